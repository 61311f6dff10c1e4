import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { Account, AccountDetail, Deposit, Entry } from '../src/contract.ts';
import { api, assertProblem, fieldsOf } from './api.ts';
import { startStack, type Stack } from './stack.ts';

describe('gateway: accounts through the public API (customers + accounts, real)', () => {
  let stack: Stack;
  let client: ReturnType<typeof api>;

  before(async () => {
    stack = await startStack(['customers', 'accounts', 'gateway']);
    client = api(stack.url('gateway'));
  });
  after(async () => stack?.stop());

  const usdAccount = async (token: string) => {
    const res = await client.get('/api/v1/accounts', token);
    assert.equal(res.status, 200);
    const accounts = z.array(Account).parse(res.body);
    assert.equal(accounts.length, 1);
    return accounts[0]!;
  };

  test('sign-up → log-in → the USD account is there at once → deposit (idempotent) → balance and ledger', async () => {
    const customer = await client.newCustomer('Katherine Johnson');

    // Right after sign-up, not eventually: the gateway opened the account before answering 201.
    const account = await usdAccount(customer.token);
    assert.equal(account.currency, 'USD');
    assert.deepEqual(account.cash, { available: '0.00', reserved: '0.00' });
    // Internal fields stay internal.
    assert.deepEqual(Object.keys((await client.get<object[]>('/api/v1/accounts', customer.token)).body[0]!).sort(), ['cash', 'currency', 'id']);

    const key = randomUUID();
    const deposit = () => client.post('/api/v1/accounts/' + account.id + '/deposits', { amount: '1250.50' }, { token: customer.token, headers: { 'idempotency-key': key } });
    const first = await deposit();
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const made = Deposit.parse(first.body);
    assert.equal(made.amount, '1250.50');
    const second = await deposit();
    assert.equal(second.status, 201);
    assert.deepEqual(second.body, first.body, 'a repeated Idempotency-Key answers the same deposit');

    const detail = await client.get('/api/v1/accounts/' + account.id, customer.token);
    assert.equal(detail.status, 200);
    const parsed = AccountDetail.parse(detail.body);
    assert.deepEqual(parsed.cash, { available: '1250.50', reserved: '0.00' }, 'deposited once');
    assert.deepEqual(parsed.positions, []);
    assert.deepEqual(Object.keys(detail.body as object).sort(), ['cash', 'currency', 'id', 'positions']);

    const entries = await client.get('/api/v1/accounts/' + account.id + '/entries', customer.token);
    assert.equal(entries.status, 200);
    const list = z.array(Entry).parse(entries.body);
    assert.equal(list.length, 1);
    // Double entry: the deposit's postings sum to zero.
    const total = list[0]!.postings.reduce((sum, p) => sum + BigInt(p.amount.replace('.', '')), 0n);
    assert.equal(total, 0n);
    assert.equal((await client.get('/api/v1/accounts/' + account.id + '/entries?limit=1', customer.token)).status, 200);
  });

  test('the same Idempotency-Key from two customers makes two deposits', async () => {
    const a = await client.newCustomer('Customer A');
    const b = await client.newCustomer('Customer B');
    const [accA, accB] = await Promise.all([usdAccount(a.token), usdAccount(b.token)]);
    const key = 'shared-key-1';
    const depA = await client.post(`/api/v1/accounts/${accA.id}/deposits`, { amount: '10.00' }, { token: a.token, headers: { 'idempotency-key': key } });
    const depB = await client.post(`/api/v1/accounts/${accB.id}/deposits`, { amount: '20.00' }, { token: b.token, headers: { 'idempotency-key': key } });
    assert.equal(depA.status, 201);
    assert.equal(depB.status, 201, JSON.stringify(depB.body));
    assert.notEqual((depA.body as { id: string }).id, (depB.body as { id: string }).id);
    assert.equal((await usdAccount(b.token)).cash.available, '20.00');
  });

  test("another customer's account is 404 for reading, depositing and its ledger", async () => {
    const owner = await client.newCustomer('Owner');
    const intruder = await client.newCustomer('Intruder');
    const account = await usdAccount(owner.token);

    assertProblem(await client.get(`/api/v1/accounts/${account.id}`, intruder.token), 404);
    assertProblem(await client.get(`/api/v1/accounts/${account.id}/entries`, intruder.token), 404);
    assertProblem(
      await client.post(`/api/v1/accounts/${account.id}/deposits`, { amount: '5.00' }, { token: intruder.token, headers: { 'idempotency-key': randomUUID() } }),
      404,
    );
    // Nothing was deposited into the owner's account, and the intruder's list shows only their own.
    assert.equal((await usdAccount(owner.token)).cash.available, '0.00');
    assert.notEqual((await usdAccount(intruder.token)).id, account.id);
    // An account that does not exist at all looks the same as someone else's.
    assertProblem(await client.get(`/api/v1/accounts/${randomUUID()}`, intruder.token), 404);
  });

  test('bad deposits are 400 naming the field', async () => {
    const customer = await client.newCustomer('Validator');
    const account = await usdAccount(customer.token);
    const post = (body: unknown, headers: Record<string, string> = { 'idempotency-key': randomUUID() }) =>
      client.post(`/api/v1/accounts/${account.id}/deposits`, body, { token: customer.token, headers });

    for (const amount of ['12.345', '-5.00', '0.00', '1e3', 12.5]) {
      const problem = assertProblem(await post({ amount }), 400, 'validation_failed');
      assert.deepEqual(fieldsOf(problem), ['body.amount'], `amount ${JSON.stringify(amount)}`);
    }
    assert.deepEqual(fieldsOf(assertProblem(await post({ amount: '1.00' }, {}), 400)), ['headers.idempotency-key']);
    assert.deepEqual(fieldsOf(assertProblem(await client.get('/api/v1/accounts/not-a-uuid', customer.token), 400)), ['params.id']);
    assert.deepEqual(fieldsOf(assertProblem(await client.get(`/api/v1/accounts/${account.id}/entries?limit=0`, customer.token), 400)), ['query.limit']);
  });

  test('a key reused for a different amount is refused with the service code', async () => {
    const customer = await client.newCustomer('Reuser');
    const account = await usdAccount(customer.token);
    const headers = { 'idempotency-key': randomUUID() };
    assert.equal((await client.post(`/api/v1/accounts/${account.id}/deposits`, { amount: '1.00' }, { token: customer.token, headers })).status, 201);
    assertProblem(await client.post(`/api/v1/accounts/${account.id}/deposits`, { amount: '2.00' }, { token: customer.token, headers }), 409, 'idempotency_key_reused');
  });
});
