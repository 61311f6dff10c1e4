import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { failure, fundedAccount, SERVICE_TOKEN, startAccounts, type Harness } from './helpers.ts';

let h: Harness;
before(async () => {
  h = await startAccounts();
});
after(async () => {
  await h.stop();
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${h.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

describe('openAccount', () => {
  it('opens once per customer and currency: 201, then 200 with the same account', async () => {
    const customerId = randomUUID();
    const first = await h.accounts.openAccount({ body: { customerId, currency: 'USD' } });
    const again = await h.accounts.openAccount({ body: { customerId } });
    assert.equal(first.status, 201);
    assert.equal(again.status, 200);
    assert.equal(again.body.id, first.body.id);
    assert.equal(first.headers.location, `/accounts/${first.body.id}`);
    assert.deepEqual(first.body.cash, { balance: '0.00', available: '0.00', reserved: '0.00' });

    const listed = await h.accounts.listAccounts({ query: { customerId } });
    assert.deepEqual(listed.body.map((a) => a.id), [first.body.id]);

    await h.events.settled(h.sql);
    assert.equal(h.events.of('accounts.AccountOpened.v1', first.body.id).length, 1, 'AccountOpened is announced once');
  });

  it('concurrent opens for one customer end with one account', async () => {
    const customerId = randomUUID();
    const results = await Promise.all(Array.from({ length: 8 }, () => h.accounts.openAccount({ body: { customerId } })));
    assert.equal(new Set(results.map((r) => r.body.id)).size, 1);
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 200, 200, 201]);
  });
});

describe('deposit', () => {
  it('credits the account and answers a repeated key with the first deposit, moving money once', async () => {
    const { accountId } = await fundedAccount(h, '0.00');
    const key = randomUUID();
    const first = await h.accounts.deposit({ params: { id: accountId }, query: {}, headers: { 'idempotency-key': key }, body: { amount: '100.50' } });
    const again = await h.accounts.deposit({ params: { id: accountId }, query: {}, headers: { 'idempotency-key': key }, body: { amount: '100.50' } });
    assert.equal(first.status, 201);
    assert.equal(again.status, 201);
    assert.deepEqual(again.body, first.body);
    assert.equal(first.body.amount, '100.50');

    const account = await h.accounts.getAccount({ params: { id: accountId }, query: {} });
    assert.deepEqual(account.body.cash, { balance: '100.50', available: '100.50', reserved: '0.00' });

    const entries = await h.accounts.listEntries({ params: { id: accountId }, query: {} });
    assert.equal(entries.body.length, 1);
    assert.equal(entries.body[0]!.id, first.body.entryId);
    assert.equal(entries.body[0]!.kind, 'deposit');
    assert.equal(entries.body[0]!.reference, first.body.id);
    assert.deepEqual(
      entries.body[0]!.postings.map((p) => [p.ledgerAccount, p.asset, p.amount]).sort(),
      [['customer:' + accountId, 'USD', '100.50'], ['external:bank', 'USD', '-100.50']],
    );
    await h.events.settled(h.sql);
    assert.equal(h.events.of('accounts.FundsDeposited.v1', accountId).length, 1, 'FundsDeposited is announced once');
  });

  it('refuses a reused key with a different amount', async () => {
    const { accountId } = await fundedAccount(h, '0.00');
    const key = randomUUID();
    await h.accounts.deposit({ params: { id: accountId }, query: {}, headers: { 'idempotency-key': key }, body: { amount: '10.00' } });
    assert.deepEqual(
      await failure(h.accounts.deposit({ params: { id: accountId }, query: {}, headers: { 'idempotency-key': key }, body: { amount: '10.01' } })),
      { status: 409, code: 'idempotency_key_reused' },
    );
    const account = await h.accounts.getAccount({ params: { id: accountId }, query: {} });
    assert.equal(account.body.cash.balance, '10.00');
  });

  it('concurrent deposits with one key move the money once', async () => {
    const { accountId } = await fundedAccount(h, '0.00');
    const key = randomUUID();
    const results = await Promise.all(
      Array.from({ length: 10 }, () => h.accounts.deposit({ params: { id: accountId }, query: {}, headers: { 'idempotency-key': key }, body: { amount: '7.00' } })),
    );
    assert.equal(new Set(results.map((r) => r.body.id)).size, 1);
    const account = await h.accounts.getAccount({ params: { id: accountId }, query: {} });
    assert.equal(account.body.cash.balance, '7.00');
  });

  for (const amount of ['1.234', '-5', 5, '0.00', '1e3', ' 5.00', '']) {
    it(`answers 400 naming body.amount for amount ${JSON.stringify(amount)}`, async () => {
      const { accountId } = await fundedAccount(h, '0.00');
      const res = await post(`/accounts/${accountId}/deposits`, { amount }, { 'idempotency-key': randomUUID() });
      assert.equal(res.status, 400);
      const problem = (await res.json()) as { code: string; errors: { field: string }[] };
      assert.equal(problem.code, 'validation_failed');
      assert.deepEqual(problem.errors.map((e) => e.field), ['body.amount']);
      const account = await h.accounts.getAccount({ params: { id: accountId }, query: {} });
      assert.equal(account.body.cash.balance, '0.00');
    });
  }

  it('requires an Idempotency-Key', async () => {
    const { accountId } = await fundedAccount(h, '0.00');
    const res = await post(`/accounts/${accountId}/deposits`, { amount: '5.00' });
    assert.equal(res.status, 400);
    const problem = (await res.json()) as { errors: { field: string }[] };
    assert.deepEqual(problem.errors.map((e) => e.field), ['headers.idempotency-key']);
  });

  it('refuses an amount beyond what the ledger holds with 422', async () => {
    const { accountId } = await fundedAccount(h, '0.00');
    assert.deepEqual(
      await failure(h.accounts.deposit({ params: { id: accountId }, query: {}, headers: { 'idempotency-key': randomUUID() }, body: { amount: '9999999999999999.99' } })),
      { status: 422, code: 'amount_out_of_range' },
    );
  });

  it('answers 404 for an unknown account', async () => {
    assert.deepEqual(
      await failure(h.accounts.deposit({ params: { id: randomUUID() }, query: {}, headers: { 'idempotency-key': randomUUID() }, body: { amount: '1.00' } })),
      { status: 404, code: 'account_not_found' },
    );
  });
});

describe('customer scoping', () => {
  it('answers 404 when the account is not the named customer’s, and moves no money', async () => {
    const { accountId, customerId } = await fundedAccount(h, '50.00');
    const stranger = randomUUID();
    const notFound = { status: 404, code: 'account_not_found' };
    assert.deepEqual(await failure(h.accounts.getAccount({ params: { id: accountId }, query: { customerId: stranger } })), notFound);
    assert.deepEqual(await failure(h.accounts.listEntries({ params: { id: accountId }, query: { customerId: stranger } })), notFound);
    assert.deepEqual(
      await failure(h.accounts.deposit({ params: { id: accountId }, query: { customerId: stranger }, headers: { 'idempotency-key': randomUUID() }, body: { amount: '1.00' } })),
      notFound,
    );

    const own = await h.accounts.getAccount({ params: { id: accountId }, query: { customerId } });
    assert.equal(own.body.cash.balance, '50.00');
    const entries = await h.accounts.listEntries({ params: { id: accountId }, query: { customerId } });
    assert.equal(entries.body.length, 1);
  });

  it('answers 404 for an unknown account, and 400 for a malformed id', async () => {
    assert.deepEqual(await failure(h.accounts.getAccount({ params: { id: randomUUID() }, query: {} })), { status: 404, code: 'account_not_found' });
    const res = await fetch(`${h.url}/accounts/not-a-uuid`);
    assert.equal(res.status, 400);
  });
});

describe('service surface', () => {
  it('publishes its contract as OpenAPI', async () => {
    const res = await fetch(`${h.url}/openapi.json`);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as { paths: Record<string, unknown> };
    for (const path of ['/accounts', '/accounts/{id}', '/accounts/{id}/deposits', '/accounts/{id}/entries', '/reservations/{id}', '/reservations/{id}/release', '/reservations/{id}/settle', '/admin/ledger']) {
      assert.ok(doc.paths[path], `${path} is documented`);
    }
  });

  it('is ready once its database and bus answer', async () => {
    const res = await fetch(`${h.url}/health/ready`);
    assert.equal(res.status, 200);
  });
});

describe('ledgerTotals', () => {
  it('requires the service credential', async () => {
    assert.equal((await fetch(`${h.url}/admin/ledger`)).status, 401);
    assert.equal((await fetch(`${h.url}/admin/ledger`, { headers: { 'x-service-token': 'wrong-token-0123456789' } })).status, 401);
    assert.equal((await fetch(`${h.url}/admin/ledger`, { headers: { 'x-service-token': SERVICE_TOKEN } })).status, 200);
  });
});
