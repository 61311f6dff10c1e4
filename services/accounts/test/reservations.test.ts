import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createClient, isUpstreamError } from '@simplebank/chassis';
import { accountsContract } from '../src/contract.ts';
import { failure, fundedAccount, reserveCash, reserveShares, SERVICE_TOKEN, startAccounts, type Harness } from './helpers.ts';

let h: Harness;
before(async () => {
  h = await startAccounts();
});
after(async () => {
  await h.stop();
});

const cashOf = async (accountId: string) => (await h.accounts.getAccount({ params: { id: accountId }, query: {} })).body.cash;
const positionsOf = async (accountId: string) => (await h.accounts.getAccount({ params: { id: accountId }, query: {} })).body.positions;

describe('reserve', () => {
  it('holds cash: 201, then 200 with the same reservation for a retry', async () => {
    const { accountId } = await fundedAccount(h, '100.00');
    const id = randomUUID();
    const first = await reserveCash(h, accountId, '40.00', id);
    const retry = await reserveCash(h, accountId, '40.00', id);
    assert.equal(first.status, 201);
    assert.equal(retry.status, 200);
    assert.deepEqual(retry.body, first.body);
    assert.deepEqual(first.body, { id, accountId, kind: 'cash', symbol: null, amount: '40.00', quantity: null, status: 'active' });
    assert.deepEqual(await cashOf(accountId), { balance: '100.00', available: '60.00', reserved: '40.00' });
  });

  it('refuses more cash than is available with 409 insufficient_funds', async () => {
    const { accountId } = await fundedAccount(h, '100.00');
    await reserveCash(h, accountId, '60.00');
    assert.deepEqual(await failure(reserveCash(h, accountId, '40.01')), { status: 409, code: 'insufficient_funds' });
    assert.equal((await reserveCash(h, accountId, '40.00')).status, 201);
    assert.deepEqual(await cashOf(accountId), { balance: '100.00', available: '0.00', reserved: '100.00' });
  });

  it('refuses shares the customer does not have with 409 insufficient_shares', async () => {
    const { accountId } = await fundedAccount(h, '100.00');
    assert.deepEqual(await failure(reserveShares(h, accountId, 'AAPL', 1)), { status: 409, code: 'insufficient_shares' });
  });

  it('answers 404 account_not_found for an unknown account', async () => {
    assert.deepEqual(await failure(reserveCash(h, randomUUID(), '1.00')), { status: 404, code: 'account_not_found' });
  });

  it('refuses the cash currency as a share symbol', async () => {
    const { accountId } = await fundedAccount(h, '1.00');
    const res = await fetch(`${h.url}/reservations/${randomUUID()}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${SERVICE_TOKEN}` },
      body: JSON.stringify({ kind: 'shares', accountId, symbol: 'USD', quantity: 1 }),
    });
    assert.equal(res.status, 400);
  });

  it('never over-reserves under concurrency: 20 parallel holds of 10.00 on 100.00 → exactly 10 succeed', async () => {
    const { accountId } = await fundedAccount(h, '100.00');
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () =>
        reserveCash(h, accountId, '10.00').then(
          (r) => r.status,
          (err: unknown) => (isUpstreamError(err) ? err.code : 'unexpected'),
        ),
      ),
    );
    assert.equal(outcomes.filter((o) => o === 201).length, 10);
    assert.equal(outcomes.filter((o) => o === 'insufficient_funds').length, 10);
    assert.deepEqual(await cashOf(accountId), { balance: '100.00', available: '0.00', reserved: '100.00' });
  });

  it('concurrent retries of one reservation create it once', async () => {
    const { accountId } = await fundedAccount(h, '100.00');
    const id = randomUUID();
    const results = await Promise.all(Array.from({ length: 10 }, () => reserveCash(h, accountId, '30.00', id)));
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
    assert.deepEqual(await cashOf(accountId), { balance: '100.00', available: '70.00', reserved: '30.00' });
  });
});

describe('release', () => {
  it('is idempotent and frees the hold', async () => {
    const { accountId } = await fundedAccount(h, '100.00');
    const { body } = await reserveCash(h, accountId, '25.00');
    const first = await h.accounts.release({ params: { id: body.id } });
    const again = await h.accounts.release({ params: { id: body.id } });
    assert.deepEqual(first.body, { id: body.id, status: 'released' });
    assert.deepEqual(again.body, { id: body.id, status: 'released' });
    assert.deepEqual(await cashOf(accountId), { balance: '100.00', available: '100.00', reserved: '0.00' });
    // A reserve retried after the release finds the released hold and holds nothing again.
    const retried = await reserveCash(h, accountId, '25.00', body.id);
    assert.equal(retried.status, 200);
    assert.equal(retried.body.status, 'released');
  });

  it('answers unknown for a reservation never made, and a reserve arriving later is recorded as released', async () => {
    const { accountId } = await fundedAccount(h, '100.00');
    const id = randomUUID();
    assert.deepEqual((await h.accounts.release({ params: { id } })).body, { id, status: 'unknown' });
    const late = await reserveCash(h, accountId, '25.00', id);
    assert.equal(late.status, 200);
    assert.equal(late.body.status, 'released');
    assert.deepEqual(await cashOf(accountId), { balance: '100.00', available: '100.00', reserved: '0.00' });
    assert.deepEqual(
      await failure(h.accounts.settle({ params: { id }, body: { side: 'buy', symbol: 'AAPL', quantity: 1, price: '1.00', fee: '0.00' } })),
      { status: 409, code: 'reservation_released' },
    );
  });

  it('answers settled for a settled reservation and leaves it settled', async () => {
    const { accountId } = await fundedAccount(h, '100.00');
    const { body } = await reserveCash(h, accountId, '50.00');
    await h.accounts.settle({ params: { id: body.id }, body: { side: 'buy', symbol: 'AAPL', quantity: 1, price: '40.00', fee: '1.00' } });
    assert.deepEqual((await h.accounts.release({ params: { id: body.id } })).body, { id: body.id, status: 'settled' });
    assert.deepEqual(await cashOf(accountId), { balance: '59.00', available: '59.00', reserved: '0.00' });
  });
});

describe('settle', () => {
  it('settles a buy then a sell: cash, positions and ledger totals add up', async () => {
    const { accountId } = await fundedAccount(h, '1000.00');
    const buyOrder = randomUUID();
    await reserveCash(h, accountId, '600.00', buyOrder);

    const buy = { side: 'buy' as const, symbol: 'AAPL', quantity: 3, price: '190.15', fee: '1.99' };
    const settled = await h.accounts.settle({ params: { id: buyOrder }, body: buy });
    const again = await h.accounts.settle({ params: { id: buyOrder }, body: buy });
    assert.deepEqual(settled.body, { id: buyOrder, entryId: settled.body.entryId, status: 'settled' });
    assert.deepEqual(again.body, settled.body, 'a repeated settle returns the same entry');

    // 3 × 190.15 = 570.45, + 1.99 fee = 572.44; the rest of the 600.00 hold is no longer held.
    assert.deepEqual(await cashOf(accountId), { balance: '427.56', available: '427.56', reserved: '0.00' });
    assert.deepEqual(await positionsOf(accountId), [{ symbol: 'AAPL', quantity: 3, reserved: 0, available: 3 }]);

    const sellOrder = randomUUID();
    await reserveShares(h, accountId, 'AAPL', 2, sellOrder);
    assert.deepEqual(await positionsOf(accountId), [{ symbol: 'AAPL', quantity: 3, reserved: 2, available: 1 }]);
    assert.deepEqual(await failure(reserveShares(h, accountId, 'AAPL', 2)), { status: 409, code: 'insufficient_shares' });

    await h.accounts.settle({ params: { id: sellOrder }, body: { side: 'sell', symbol: 'AAPL', quantity: 2, price: '200.00', fee: '1.00' } });
    // + 2 × 200.00 − 1.00 = 399.00
    assert.deepEqual(await cashOf(accountId), { balance: '826.56', available: '826.56', reserved: '0.00' });
    assert.deepEqual(await positionsOf(accountId), [{ symbol: 'AAPL', quantity: 1, reserved: 0, available: 1 }]);

    const entries = (await h.accounts.listEntries({ params: { id: accountId }, query: {} })).body;
    assert.deepEqual(entries.map((e) => [e.kind, e.reference]), [['trade', sellOrder], ['trade', buyOrder], ['deposit', entries[2]!.reference]]);
    const sell = entries[0]!.postings.map((p) => [p.ledgerAccount, p.asset, p.amount]).sort();
    assert.deepEqual(sell, [
      [`customer:${accountId}`, 'AAPL', '-2'],
      [`customer:${accountId}`, 'USD', '399.00'],
      ['exchange:clearing', 'AAPL', '2'],
      ['exchange:clearing', 'USD', '-400.00'],
      ['fees:revenue', 'USD', '1.00'],
    ]);

    await h.events.settled(h.sql);
    assert.deepEqual(
      h.events.of('accounts.TradeSettled.v1', accountId).map((e) => [e.correlationId, (e.data as { side: string }).side]),
      [[buyOrder, 'buy'], [sellOrder, 'sell']],
    );
  });

  it('a buy above its hold settles only when the account has the difference available', async () => {
    const { accountId } = await fundedAccount(h, '100.00');
    const tight = randomUUID();
    await reserveCash(h, accountId, '50.00', tight);
    await reserveCash(h, accountId, '45.00'); // another open order: 5.00 stays available
    const tooDear = { side: 'buy' as const, symbol: 'MSFT', quantity: 1, price: '55.00', fee: '0.01' };
    assert.deepEqual(await failure(h.accounts.settle({ params: { id: tight }, body: tooDear })), { status: 409, code: 'insufficient_funds' });
    assert.deepEqual(await cashOf(accountId), { balance: '100.00', available: '5.00', reserved: '95.00' });

    await h.accounts.settle({ params: { id: tight }, body: { ...tooDear, fee: '0.00' } });
    assert.deepEqual(await cashOf(accountId), { balance: '45.00', available: '0.00', reserved: '45.00' });
  });

  it('refuses a released reservation, a mismatched one, and an unknown one', async () => {
    const { accountId } = await fundedAccount(h, '100.00');
    const released = (await reserveCash(h, accountId, '10.00')).body.id;
    await h.accounts.release({ params: { id: released } });
    const buy = { side: 'buy' as const, symbol: 'AAPL', quantity: 1, price: '5.00', fee: '0.00' };
    assert.deepEqual(await failure(h.accounts.settle({ params: { id: released }, body: buy })), { status: 409, code: 'reservation_released' });

    const cash = (await reserveCash(h, accountId, '10.00')).body.id;
    assert.deepEqual(await failure(h.accounts.settle({ params: { id: cash }, body: { ...buy, side: 'sell' } })), { status: 409, code: 'reservation_mismatch' });
    assert.deepEqual(await failure(h.accounts.settle({ params: { id: randomUUID() }, body: buy })), { status: 404, code: 'reservation_not_found' });
    assert.deepEqual(await cashOf(accountId), { balance: '100.00', available: '90.00', reserved: '10.00' });
  });
});

// Last: it checks the whole ledger the other tests wrote.
describe('ledgerTotals', () => {
  it('every entry balances and every asset sums to zero', async () => {
    const { body } = await h.accounts.ledgerTotals({});
    assert.ok(body.entries > 10);
    assert.ok(body.postings >= body.entries * 2);
    assert.equal(body.unbalancedEntries, 0);
    assert.deepEqual(body.totals, [
      { asset: 'AAPL', sum: '0' },
      { asset: 'MSFT', sum: '0' },
      { asset: 'USD', sum: '0.00' },
    ]);
    const { rows } = await h.sql.query(`SELECT count(*)::int AS n FROM reservations WHERE status = 'active'`);
    assert.equal(body.activeReservations, rows[0]!.n);
  });
});

describe('reserveBatch and settleBatch', () => {
  it('answer each item as its own call would have: held, repeated, refused; settled, repeated, unknown', async () => {
    const { accountId } = await fundedAccount(h, '100.00');
    const [a, b, c, unknown] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const held = await h.accounts.reserveBatch({
      body: {
        reservations: [
          { id: a, kind: 'cash', accountId, amount: '40.00' },
          { id: b, kind: 'cash', accountId, amount: '40.00' },
          { id: c, kind: 'cash', accountId, amount: '40.00' },
          { id: a, kind: 'cash', accountId, amount: '40.00' },
        ],
      },
    });
    const hold = (id: string) => ({ id, accountId, kind: 'cash', symbol: null, amount: '40.00', quantity: null, status: 'active' });
    assert.deepEqual(held.body.results, [
      { status: 201, body: hold(a) },
      { status: 201, body: hold(b) },
      { status: 409, problem: { code: 'insufficient_funds', detail: '40.00 USD requested, 20.00 available' } },
      { status: 200, body: hold(a) },
    ]);
    assert.deepEqual(await cashOf(accountId), { balance: '100.00', available: '20.00', reserved: '80.00' });

    const trade = { side: 'buy' as const, symbol: 'AAPL', quantity: 1, price: '30.00', fee: '1.00' };
    const settled = await h.accounts.settleBatch({ body: { settlements: [{ id: a, ...trade }, { id: b, ...trade }, { id: unknown, ...trade }] } });
    const [first, second, missing] = settled.body.results;
    assert.ok(first && 'body' in first && second && 'body' in second);
    assert.deepEqual([first.status, first.body.id, first.body.status, second.status, second.body.id], [200, a, 'settled', 200, b]);
    assert.ok(missing && 'problem' in missing);
    assert.deepEqual([missing.status, missing.problem.code], [404, 'reservation_not_found']);
    const again = await h.accounts.settleBatch({ body: { settlements: [{ id: a, ...trade }] } });
    assert.deepEqual(again.body.results, [{ status: 200, body: first.body }], 'a repeated settlement answers the first entry');

    // Two trades of 31.00 each, once each; the holds settled, nothing left reserved.
    assert.deepEqual(await cashOf(accountId), { balance: '38.00', available: '38.00', reserved: '0.00' });
    assert.deepEqual((await positionsOf(accountId)).map((p) => [p.symbol, p.quantity, p.reserved]), [['AAPL', 2, 0]]);
  });

  it('refuse a malformed item, an empty batch, and (like the single routes) a caller without the service credential', async () => {
    const { accountId } = await fundedAccount(h, '10.00');
    for (const reservations of [[{ id: randomUUID(), kind: 'cash' as const, accountId, amount: '1.5.0' }], []]) {
      assert.equal((await failure(h.accounts.reserveBatch({ body: { reservations } }))).status, 400);
    }
    assert.equal((await failure(h.accounts.settleBatch({ body: { settlements: [] } }))).status, 400);
    const anonymous = createClient(accountsContract, { baseUrl: h.url });
    try {
      assert.equal((await failure(anonymous.reserveBatch({ body: { reservations: [{ id: randomUUID(), kind: 'cash', accountId, amount: '1.00' }] } }))).status, 401);
      assert.equal((await failure(anonymous.settleBatch({ body: { settlements: [{ id: randomUUID(), side: 'buy', symbol: 'AAPL', quantity: 1, price: '1.00', fee: '0.00' }] } }))).status, 401);
      // The single routes move money too.
      const id = randomUUID();
      assert.equal((await failure(anonymous.reserve({ params: { id }, body: { kind: 'cash', accountId, amount: '1.00' } }))).status, 401);
      assert.equal((await failure(anonymous.settle({ params: { id }, body: { side: 'buy', symbol: 'AAPL', quantity: 1, price: '1.00', fee: '0.00' } }))).status, 401);
      assert.equal((await failure(anonymous.release({ params: { id } }))).status, 401);
    } finally {
      await anonymous.close();
    }
    assert.deepEqual(await cashOf(accountId), { balance: '10.00', available: '10.00', reserved: '0.00' });
  });
});
