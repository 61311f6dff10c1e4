/**
 * Component tests of the place-order saga against the real accounts, fees and market-data services (so they
 * are also contract tests of orders' clients for those three), with the market simulated on the bus.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createEnvelope, isUpstreamError } from '@simplebank/chassis';
import { marketContract } from '@simplebank/market/contract';
import { formatMoney, parseMoney, times } from '@simplebank/money';
import type { OrderStatus } from '../src/contract.ts';
import { sagaLog } from '../src/data.ts';
import { eventually, startBank, type Bank, type Order } from './harness.ts';

const FINAL: OrderStatus[] = ['filled', 'rejected', 'expired', 'cancelled'];

let bank: Bank;

before(async () => {
  // Few, quick retries so the give-up path of the reserve step is reachable in a test. The client's own retries of
  // a failed call to accounts are off: these tests count the saga's redeliveries, one call to accounts each.
  bank = await startBank({ ORDER_RESERVE_ATTEMPTS: '4', ORDER_RETRY_BACKOFF_MS: '50', RESILIENCE_ACCOUNTS_RETRY_ATTEMPTS: '1' });
});

after(async () => {
  await bank?.stop();
});

async function fundedAccount(amount: string): Promise<{ customerId: string; accountId: string }> {
  const customerId = randomUUID();
  const opened = await bank.accounts.openAccount({ body: { customerId } });
  const accountId = opened.body.id;
  if (parseMoney(amount) > 0n) {
    await bank.accounts.deposit({ params: { id: accountId }, query: {}, headers: { 'idempotency-key': randomUUID() }, body: { amount } });
  }
  return { customerId, accountId };
}

interface OrderInput {
  customerId: string;
  accountId: string;
  symbol?: string;
  side?: 'buy' | 'sell';
  quantity?: number;
  type?: 'market' | 'limit';
  limitPrice?: string;
}

async function place(input: OrderInput, key: string = randomUUID()) {
  return bank.ordersClient.placeOrder({
    headers: { 'idempotency-key': key },
    body: { symbol: 'AAPL', side: 'buy', quantity: 10, type: 'market', ...input },
  });
}

async function getOrder(id: string, customerId?: string): Promise<Order> {
  const res = await bank.ordersClient.getOrder({ params: { id }, query: customerId ? { customerId } : {} });
  return res.body;
}

/** Waits for `expected`, but stops early (and fails) if the order ends in another final state. */
async function waitForStatus(id: string, expected: OrderStatus): Promise<Order> {
  const order = await eventually(() => getOrder(id), (o) => o.status === expected || FINAL.includes(o.status), `order ${id} to be ${expected}`);
  assert.equal(order.status, expected, `order is ${order.status} (reason: ${order.reason})`);
  return order;
}

async function account(accountId: string) {
  return (await bank.accounts.getAccount({ params: { id: accountId }, query: {} })).body;
}

async function steps(orderId: string): Promise<string[]> {
  return (await sagaLog(bank.ordersDb, orderId)).map((s) => `${s.step}:${s.outcome}`);
}

async function waitForStep(orderId: string, step: string): Promise<string[]> {
  return eventually(() => steps(orderId), (s) => s.includes(step), `saga step ${step} of ${orderId}`);
}

/** The types of the events orders published about an order, in order, once all it wrote has been published. */
async function publishedTypes(orderId: string): Promise<string[]> {
  await bank.orderEvents.settled(bank.ordersDb);
  return bank.orderEvents.events.filter((e) => e.subject === orderId).map((e) => e.type);
}

async function tradeEntries(accountId: string, orderId: string) {
  const entries = (await bank.accounts.listEntries({ params: { id: accountId }, query: {} })).body;
  return entries.filter((e) => e.kind === 'trade' && e.reference === orderId);
}

/** A buy taken through the whole saga at `price`; returns the filled order. */
async function buyAndFill(owner: { customerId: string; accountId: string }, quantity: number, price: string): Promise<Order> {
  const placed = await place({ ...owner, quantity });
  const id = placed.body.id;
  await waitForStatus(id, 'accepted');
  await bank.market('OrderPlaced', { orderId: id, accountId: owner.accountId, expiresAt: null });
  await waitForStatus(id, 'placed');
  await bank.market('TradeExecuted', { orderId: id, accountId: owner.accountId, price, quantity, executedAt: new Date().toISOString() });
  return waitForStatus(id, 'filled');
}

describe('place order saga', () => {
  test('a market buy fills: cash = before − qty × price − fee, the hold is released, one trade entry', async () => {
    const owner = await fundedAccount('10000.00');
    const placed = await place({ ...owner, quantity: 10 });
    assert.equal(placed.status, 202);
    assert.equal(placed.body.status, 'pending');
    assert.equal(placed.headers.location, `/orders/${placed.body.id}`);
    assert.deepEqual(placed.body.history.map((h) => h.status), ['pending']);
    const id = placed.body.id;

    const accepted = await waitForStatus(id, 'accepted');
    assert.deepEqual(accepted.history.map((h) => h.status), ['pending', 'accepted']);
    const holding = await account(owner.accountId);
    assert.ok(parseMoney(holding.cash.reserved) > 0n, 'cash is held while the order is open');
    assert.equal(parseMoney(holding.cash.available) + parseMoney(holding.cash.reserved), parseMoney('10000.00'));
    assert.deepEqual(await steps(id), ['submit:ok', 'price:ok', 'fee_quote:ok', 'reserve:ok', 'accept:ok']);
    assert.deepEqual(await publishedTypes(id), ['orders.OrderAccepted.v1']);

    // The hold covers the market price plus 5% slippage plus the fee estimate.
    const [reserve] = (await sagaLog(bank.ordersDb, id)).filter((s) => s.step === 'reserve');
    const [price] = (await sagaLog(bank.ordersDb, id)).filter((s) => s.step === 'price');
    const marketPrice = parseMoney(String(price!.detail!.price));
    assert.ok(parseMoney(String(reserve!.detail!.amount)) >= (times(marketPrice, 10) * 105n) / 100n);
    assert.equal(holding.cash.reserved, reserve!.detail!.amount);

    await bank.market('OrderPlaced', { orderId: id, accountId: owner.accountId, expiresAt: null });
    await waitForStatus(id, 'placed');
    await bank.market('TradeExecuted', { orderId: id, accountId: owner.accountId, price: '190.00', quantity: 10, executedAt: new Date().toISOString() });
    const filled = await waitForStatus(id, 'filled');

    assert.equal(filled.filledQuantity, 10);
    assert.equal(filled.averagePrice, '190.00');
    assert.ok(filled.fee !== null);
    const charge = (await bank.fees.getCharge({ params: { orderId: id } })).body;
    assert.equal(charge.fee, filled.fee);
    assert.equal(charge.notional, '1900.00');
    assert.equal(charge.status, 'charged');
    const quoted = (await bank.fees.quote({ body: { notional: '1900.00' } })).body.fee;
    assert.equal(filled.fee, quoted, 'the fee charged is the schedule fee on qty × price');

    const after = await account(owner.accountId);
    assert.equal(after.cash.reserved, '0.00', 'the hold is released by settlement');
    assert.equal(after.cash.available, formatMoney(parseMoney('10000.00') - parseMoney('1900.00') - parseMoney(filled.fee)));
    assert.deepEqual(after.positions.map((p) => ({ symbol: p.symbol, quantity: p.quantity, reserved: p.reserved })), [{ symbol: 'AAPL', quantity: 10, reserved: 0 }]);
    assert.equal((await tradeEntries(owner.accountId, id)).length, 1);

    assert.deepEqual(filled.history.map((h) => h.status), ['pending', 'accepted', 'placed', 'filled']);
    assert.deepEqual((await steps(id)).slice(5), ['place:ok', 'charge_fee:ok', 'settle:ok', 'fill:ok']);
    assert.deepEqual((await publishedTypes(id)).at(-1), 'orders.OrderFilled.v1');
  });

  test('a limit sell of owned shares holds the shares and credits the proceeds less the fee', async () => {
    const owner = await fundedAccount('5000.00');
    await buyAndFill(owner, 10, '100.00');
    const afterBuy = await account(owner.accountId);

    const placed = await place({ ...owner, side: 'sell', quantity: 4, type: 'limit', limitPrice: '120.5' });
    assert.equal(placed.body.limitPrice, '120.50');
    const id = placed.body.id;
    await waitForStatus(id, 'accepted');
    const holding = await account(owner.accountId);
    assert.deepEqual(holding.positions.map((p) => [p.symbol, p.quantity, p.reserved]), [['AAPL', 10, 4]]);
    assert.equal(holding.cash.reserved, '0.00', 'a sell holds shares, not cash');
    assert.ok(!(await steps(id)).includes('fee_quote:ok'), 'no fee estimate for a sell');

    await bank.market('TradeExecuted', { orderId: id, accountId: owner.accountId, price: '121.00', quantity: 4, executedAt: new Date().toISOString() });
    const filled = await waitForStatus(id, 'filled');
    // OrderPlaced never came (or comes later): the trade implies it.
    assert.deepEqual(filled.history.map((h) => h.status), ['pending', 'accepted', 'placed', 'filled']);

    const after = await account(owner.accountId);
    assert.deepEqual(after.positions.map((p) => [p.symbol, p.quantity, p.reserved]), [['AAPL', 6, 0]]);
    assert.equal(after.cash.available, formatMoney(parseMoney(afterBuy.cash.available) + parseMoney('484.00') - parseMoney(filled.fee!)));

    // A late OrderPlaced for the filled order is ignored.
    await bank.market('OrderPlaced', { orderId: id, accountId: owner.accountId, expiresAt: null });
    await waitForStep(id, 'place:skipped');
    assert.equal((await getOrder(id)).status, 'filled');
  });

  test('insufficient funds → rejected, nothing held', async () => {
    const owner = await fundedAccount('10.00');
    const placed = await place({ ...owner, quantity: 10 });
    const rejected = await waitForStatus(placed.body.id, 'rejected');
    assert.equal(rejected.reason, 'insufficient funds');
    assert.deepEqual(rejected.history.map((h) => [h.status, h.reason]), [['pending', undefined], ['rejected', 'insufficient funds']]);
    const acct = await account(owner.accountId);
    assert.equal(acct.cash.available, '10.00');
    assert.equal(acct.cash.reserved, '0.00');
    assert.deepEqual(await steps(placed.body.id), ['submit:ok', 'price:ok', 'fee_quote:ok', 'reserve:failed', 'reject:ok']);
    assert.deepEqual(await publishedTypes(placed.body.id), ['orders.OrderRejected.v1']);
  });

  test('selling shares the account does not have → rejected (insufficient shares)', async () => {
    const owner = await fundedAccount('100.00');
    const placed = await place({ ...owner, side: 'sell', quantity: 1 });
    const rejected = await waitForStatus(placed.body.id, 'rejected');
    assert.equal(rejected.reason, 'insufficient shares');
  });

  test('unknown symbol → rejected', async () => {
    const owner = await fundedAccount('1000.00');
    const placed = await place({ ...owner, symbol: 'NOPE' });
    const rejected = await waitForStatus(placed.body.id, 'rejected');
    assert.equal(rejected.reason, 'unknown symbol');
    assert.equal((await account(owner.accountId)).cash.reserved, '0.00');
  });

  test("an account that is not the customer's → rejected, nothing held on it", async () => {
    const victim = await fundedAccount('1000.00');
    const placed = await place({ customerId: randomUUID(), accountId: victim.accountId, quantity: 1 });
    const rejected = await waitForStatus(placed.body.id, 'rejected');
    assert.equal(rejected.reason, 'unknown account');
    assert.equal((await account(victim.accountId)).cash.reserved, '0.00');
  });

  test('expiry → expired and the reservation released', async () => {
    const owner = await fundedAccount('5000.00');
    const placed = await place({ ...owner, quantity: 5, type: 'limit', limitPrice: '150.00' });
    const id = placed.body.id;
    await waitForStatus(id, 'accepted');
    // buy limit: qty × limit + fee estimate (10 bps of 750.00 = 0.75 → the 1.00 minimum)
    assert.equal((await account(owner.accountId)).cash.reserved, '751.00');
    await bank.market('OrderPlaced', { orderId: id, accountId: owner.accountId, expiresAt: new Date(Date.now() + 60_000).toISOString() });
    await waitForStatus(id, 'placed');
    await bank.market('OrderExpired', { orderId: id, accountId: owner.accountId });
    const expired = await waitForStatus(id, 'expired');
    assert.deepEqual(expired.history.map((h) => h.status), ['pending', 'accepted', 'placed', 'expired']);
    const acct = await account(owner.accountId);
    assert.equal(acct.cash.reserved, '0.00');
    assert.equal(acct.cash.available, '5000.00');
    assert.deepEqual((await steps(id)).slice(-3), ['release:ok', 'refund_fee:skipped', 'expire:ok']);
    assert.equal((await publishedTypes(id)).at(-1), 'orders.OrderExpired.v1');

    // A repeated expiry (another event id) is a no-op.
    await bank.market('OrderExpired', { orderId: id, accountId: owner.accountId });
    await waitForStep(id, 'expire:skipped');
    assert.equal((await publishedTypes(id)).filter((t) => t === 'orders.OrderExpired.v1').length, 1);
  });

  test('the exchange rejects → rejected with its reason, reservation released', async () => {
    const owner = await fundedAccount('5000.00');
    const placed = await place({ ...owner, quantity: 2 });
    const id = placed.body.id;
    await waitForStatus(id, 'accepted');
    await bank.market('OrderRejected', { orderId: id, accountId: owner.accountId, reason: 'market closed' });
    const rejected = await waitForStatus(id, 'rejected');
    assert.equal(rejected.reason, 'market closed');
    assert.equal((await account(owner.accountId)).cash.reserved, '0.00');
  });

  test('cancel while pending: cancelled at once; the reserve racing it releases its hold', async () => {
    const owner = await fundedAccount('5000.00');
    // Hold orders' calls to accounts so the reserve step is stuck mid-flight with the order still pending.
    bank.accountsProxy.hold();
    let id: string;
    try {
      const placed = await place({ ...owner, quantity: 3 });
      id = placed.body.id;
      await eventually(async () => bank.accountsProxy.seen.length, () => bank.accountsProxy.seen.some((r) => r.startsWith(`GET /accounts/${owner.accountId}`)), 'the reserve step to call accounts');
      const res = await bank.ordersClient.cancelOrder({ params: { id }, query: { customerId: owner.customerId } });
      assert.equal(res.status, 202);
      assert.equal(res.body.status, 'cancelled');
      assert.deepEqual(res.body.history.map((h) => h.status), ['pending', 'cancelled']);
    } finally {
      bank.accountsProxy.open();
    }
    // The step goes on, reserves, finds the order cancelled under the row lock, and gives the hold back.
    const log = await waitForStep(id, 'release:ok');
    assert.ok(log.includes('reserve:ok'));
    assert.ok(!log.includes('accept:ok'));
    const acct = await account(owner.accountId);
    assert.equal(acct.cash.reserved, '0.00');
    assert.equal(acct.cash.available, '5000.00');
    assert.equal((await getOrder(id)).status, 'cancelled');
    assert.deepEqual(await publishedTypes(id), ['orders.OrderCancelled.v1']);
  });

  test('cancel while placed: cancel requested, then the market cancels → cancelled and released', async () => {
    const owner = await fundedAccount('5000.00');
    const placed = await place({ ...owner, quantity: 3 });
    const id = placed.body.id;
    await waitForStatus(id, 'accepted');
    await bank.market('OrderPlaced', { orderId: id, accountId: owner.accountId, expiresAt: null });
    await waitForStatus(id, 'placed');

    const res = await bank.ordersClient.cancelOrder({ params: { id }, query: { customerId: owner.customerId } });
    assert.equal(res.status, 202);
    assert.equal(res.body.status, 'placed', 'only the exchange can say it is cancelled');
    assert.deepEqual(res.body.history.at(-1), { status: 'placed', at: res.body.history.at(-1)!.at, reason: 'cancel requested' });
    assert.equal((await publishedTypes(id)).at(-1), 'orders.OrderCancelRequested.v1');
    // Asking again changes nothing and tells the market nothing new.
    const again = await bank.ordersClient.cancelOrder({ params: { id }, query: {} });
    assert.equal(again.body.history.length, res.body.history.length);
    assert.equal((await publishedTypes(id)).filter((t) => t === 'orders.OrderCancelRequested.v1').length, 1);

    await bank.market('OrderCancelled', { orderId: id, accountId: owner.accountId });
    const cancelled = await waitForStatus(id, 'cancelled');
    assert.deepEqual(cancelled.history.map((h) => h.status), ['pending', 'accepted', 'placed', 'placed', 'cancelled']);
    const acct = await account(owner.accountId);
    assert.equal(acct.cash.reserved, '0.00');
    assert.equal(acct.cash.available, '5000.00');
    assert.equal((await publishedTypes(id)).at(-1), 'orders.OrderCancelled.v1');

    const err = await bank.ordersClient.cancelOrder({ params: { id }, query: {} }).then(
      () => assert.fail('cancelling a cancelled order must fail'),
      (e: unknown) => e,
    );
    assert.ok(isUpstreamError(err));
    assert.equal(err.status, 409);
    assert.equal(err.code, 'order_final');
  });

  test('a cancel request that loses the race to a fill: the order fills', async () => {
    const owner = await fundedAccount('5000.00');
    const placed = await place({ ...owner, quantity: 2 });
    const id = placed.body.id;
    await waitForStatus(id, 'accepted');
    await bank.market('OrderPlaced', { orderId: id, accountId: owner.accountId, expiresAt: null });
    await waitForStatus(id, 'placed');
    await bank.ordersClient.cancelOrder({ params: { id }, query: {} });
    await bank.market('TradeExecuted', { orderId: id, accountId: owner.accountId, price: '180.00', quantity: 2, executedAt: new Date().toISOString() });
    await waitForStatus(id, 'filled');
    // The market's cancel arriving afterwards does not compensate a filled order.
    await bank.market('OrderCancelled', { orderId: id, accountId: owner.accountId });
    await waitForStep(id, 'cancel:skipped');
    assert.equal((await getOrder(id)).status, 'filled');
    assert.equal((await tradeEntries(owner.accountId, id)).length, 1);
    assert.equal((await bank.fees.getCharge({ params: { orderId: id } })).body.status, 'charged');
  });

  test('a repeated Idempotency-Key returns the same order; a different body under it → 409', async () => {
    const owner = await fundedAccount('5000.00');
    const key = randomUUID();
    const first = await place({ ...owner, quantity: 1 }, key);
    const second = await place({ ...owner, quantity: 1 }, key);
    assert.equal(second.status, 202);
    assert.equal(second.body.id, first.body.id);
    assert.equal(second.headers.location, `/orders/${first.body.id}`);
    await waitForStatus(first.body.id, 'accepted');
    const third = await place({ ...owner, quantity: 1 }, key);
    assert.equal(third.body.id, first.body.id);
    assert.equal(third.body.status, 'accepted', 'the repeat answers with the order as it is now');

    const listed = (await bank.ordersClient.listOrders({ query: { customerId: owner.customerId } })).body;
    assert.equal(listed.length, 1);
    // One saga: submitted once, reserved once, accepted once.
    assert.deepEqual(await steps(first.body.id), ['submit:ok', 'price:ok', 'fee_quote:ok', 'reserve:ok', 'accept:ok']);
    assert.deepEqual(await publishedTypes(first.body.id), ['orders.OrderAccepted.v1']);

    const conflict = await place({ ...owner, quantity: 2 }, key).then(
      () => assert.fail('a different order under a used key must be refused'),
      (e: unknown) => e,
    );
    assert.ok(isUpstreamError(conflict));
    assert.equal(conflict.status, 409);
    assert.equal(conflict.code, 'idempotency_key_reused');

    // Keys are per customer: another customer may use the same key.
    const other = await fundedAccount('5000.00');
    const theirs = await place({ ...other, quantity: 1 }, key);
    assert.notEqual(theirs.body.id, first.body.id);
  });

  test('concurrent requests with one Idempotency-Key create one order', async () => {
    const owner = await fundedAccount('5000.00');
    const key = randomUUID();
    const results = await Promise.all(Array.from({ length: 8 }, () => place({ ...owner, quantity: 1 }, key)));
    assert.equal(new Set(results.map((r) => r.body.id)).size, 1);
    assert.equal((await bank.ordersClient.listOrders({ query: { customerId: owner.customerId } })).body.length, 1);
  });

  test('TradeExecuted delivered twice → filled once (one trade entry, one charge)', async () => {
    const owner = await fundedAccount('5000.00');
    const placed = await place({ ...owner, quantity: 3 });
    const id = placed.body.id;
    await waitForStatus(id, 'accepted');
    await bank.market('OrderPlaced', { orderId: id, accountId: owner.accountId, expiresAt: null });
    await waitForStatus(id, 'placed');

    const def = marketContract.events.TradeExecuted;
    const data = { orderId: id, accountId: owner.accountId, price: '170.00', quantity: 3, executedAt: new Date().toISOString() };
    const envelope = createEnvelope('market', { type: def.type, subject: id, data });
    // The same envelope twice (a redelivery) and the same trade under a new event id (a duplicate publish), at once.
    await Promise.all([bank.market('TradeExecuted', data, envelope), bank.market('TradeExecuted', data, envelope), bank.market('TradeExecuted', data)]);
    const filled = await waitForStatus(id, 'filled');
    await waitForStep(id, 'fill:skipped');

    assert.equal((await tradeEntries(owner.accountId, id)).length, 1);
    const log = await steps(id);
    assert.equal(log.filter((s) => s === 'fill:ok').length, 1);
    assert.equal(log.filter((s) => s === 'settle:ok').length, 1);
    assert.equal(filled.history.filter((h) => h.status === 'filled').length, 1);
    assert.equal((await publishedTypes(id)).filter((t) => t === 'orders.OrderFilled.v1').length, 1);
    const acct = await account(owner.accountId);
    assert.equal(acct.cash.available, formatMoney(parseMoney('5000.00') - parseMoney('510.00') - parseMoney(filled.fee!)));
    assert.deepEqual(acct.positions.map((p) => [p.symbol, p.quantity]), [['AAPL', 3]]);
  });

  test('a burst handled in batches (group commit): every order accepted and filled once, the ledger exact', async () => {
    const owner = await fundedAccount('50000.00');
    const n = 12;
    const placed = await Promise.all(Array.from({ length: n }, (_, i) => place({ ...owner, quantity: i + 1 })));
    const ids = placed.map((p) => p.body.id);
    await Promise.all(ids.map((id) => waitForStatus(id, 'accepted')));

    // Each order's OrderPlaced and TradeExecuted published together, so batches hold both events of one order.
    const market = marketContract.events;
    const envelopes = ids.flatMap((id, i) => [
      createEnvelope('market', { type: market.OrderPlaced.type, subject: id, data: { orderId: id, accountId: owner.accountId, expiresAt: null } }),
      createEnvelope('market', {
        type: market.TradeExecuted.type,
        subject: id,
        data: { orderId: id, accountId: owner.accountId, price: '100.00', quantity: i + 1, executedAt: new Date().toISOString() },
      }),
    ]);
    await bank.orders.context.bus.publishBatch(envelopes);
    const filled = await Promise.all(ids.map((id) => waitForStatus(id, 'filled')));

    for (const id of ids) {
      const log = await steps(id);
      assert.equal(log.filter((s) => s === 'fill:ok').length, 1, `${id}: ${log}`);
      assert.equal(log.filter((s) => s === 'accept:ok').length, 1, `${id}: ${log}`);
      assert.equal((await tradeEntries(owner.accountId, id)).length, 1);
    }
    for (const o of filled) assert.deepEqual(o.history.map((h) => h.status), ['pending', 'accepted', 'placed', 'filled']);
    const acct = await account(owner.accountId);
    const spent = filled.reduce((sum, o) => sum + times(parseMoney('100.00'), o.filledQuantity) + parseMoney(o.fee!), 0n);
    assert.equal(acct.cash.reserved, '0.00');
    assert.equal(acct.cash.available, formatMoney(parseMoney('50000.00') - spent));

    // Grouped, each order's step still ran in its own delivery's context: what it published continues its own trace.
    const traces = await bank.ordersDb.many<{ id: string; trace_id: string }>('SELECT id, trace_id FROM orders WHERE id = ANY($1::uuid[])', [ids]);
    assert.equal(traces.length, n);
    await bank.orderEvents.settled(bank.ordersDb);
    for (const t of traces) {
      const accepted = bank.orderEvents.of('orders.OrderAccepted.v1', t.id);
      assert.equal(accepted.length, 1, `order ${t.id}`);
      assert.equal(accepted[0]!.traceparent?.split('-')[1], t.trace_id, `order ${t.id}`);
    }

    // Rows written by one transaction share its id (xmin): fewer fill transactions than orders means steps were grouped.
    const fills = await bank.ordersDb.many<{ transactions: string }>(
      "SELECT count(DISTINCT xmin::text) AS transactions FROM saga_log WHERE order_id = ANY($1::uuid[]) AND step = 'fill' AND outcome = 'ok'",
      [ids],
    );
    assert.ok(Number(fills[0]!.transactions) < n, `fills in ${fills[0]!.transactions} transactions`);
  });

  test('accounts failing for a while: the reserve step retries and the order is accepted', async () => {
    const owner = await fundedAccount('5000.00');
    bank.accountsProxy.failNext(2);
    const placed = await place({ ...owner, quantity: 1 });
    await waitForStatus(placed.body.id, 'accepted');
    assert.equal((await steps(placed.body.id)).filter((s) => s === 'reserve:ok').length, 1);
  });

  test('accounts down for every attempt: the reserve step gives up, releases, and rejects the order', async () => {
    const owner = await fundedAccount('5000.00');
    // Four deliveries, one failed call each; the release on the last one goes through.
    bank.accountsProxy.failNext(4);
    const placed = await place({ ...owner, quantity: 1 });
    const rejected = await waitForStatus(placed.body.id, 'rejected');
    assert.equal(rejected.reason, 'could not reserve: a service is unavailable');
    assert.deepEqual(await steps(placed.body.id), ['submit:ok', 'release:ok', 'reserve:failed', 'reject:ok']);
    const [failed] = (await sagaLog(bank.ordersDb, placed.body.id)).filter((s) => s.step === 'reserve');
    assert.equal(failed!.detail!.status, 503);
    assert.equal(failed!.detail!.attempt, 4);
    assert.equal((await account(owner.accountId)).cash.reserved, '0.00');
    // The step is over: its queue row went with the rejection.
    assert.equal((await bank.ordersDb.many('SELECT 1 FROM reserve_queue WHERE order_id = $1', [placed.body.id])).length, 0);
  });

  test('an execution that does not fit the order is neither charged nor settled', async () => {
    const owner = await fundedAccount('5000.00');
    const placed = await place({ ...owner, quantity: 2 });
    const id = placed.body.id;
    await waitForStatus(id, 'accepted');
    await bank.market('OrderPlaced', { orderId: id, accountId: owner.accountId, expiresAt: null });
    await waitForStatus(id, 'placed');
    await bank.market('TradeExecuted', { orderId: id, accountId: owner.accountId, price: '100.00', quantity: 5, executedAt: new Date().toISOString() });
    await waitForStep(id, 'fill:failed');
    assert.equal((await getOrder(id)).status, 'placed');
    assert.equal((await tradeEntries(owner.accountId, id)).length, 0);
    const charge = await bank.fees.getCharge({ params: { orderId: id } }).then(
      () => assert.fail('nothing may be charged'),
      (e: unknown) => e,
    );
    assert.ok(isUpstreamError(charge) && charge.status === 404);
  });

  test('orders are scoped to their customer', async () => {
    const owner = await fundedAccount('5000.00');
    const stranger = randomUUID();
    const a = await place({ ...owner, quantity: 1 });
    const b = await place({ ...owner, quantity: 2 });
    assert.equal((await getOrder(a.body.id, owner.customerId)).id, a.body.id);

    for (const call of [
      () => bank.ordersClient.getOrder({ params: { id: a.body.id }, query: { customerId: stranger } }),
      () => bank.ordersClient.cancelOrder({ params: { id: a.body.id }, query: { customerId: stranger } }),
      () => bank.ordersClient.getOrder({ params: { id: randomUUID() }, query: {} }),
    ]) {
      const err = await call().then(
        () => assert.fail('must be 404'),
        (e: unknown) => e,
      );
      assert.ok(isUpstreamError(err));
      assert.equal(err.status, 404);
    }

    const mine = (await bank.ordersClient.listOrders({ query: { customerId: owner.customerId } })).body;
    assert.deepEqual(new Set(mine.map((o) => o.id)), new Set([a.body.id, b.body.id]));
    assert.ok(mine.every((o) => o.history.length >= 1));
    assert.deepEqual((await bank.ordersClient.listOrders({ query: { customerId: stranger } })).body, []);
    assert.equal((await bank.ordersClient.listOrders({ query: { customerId: owner.customerId, limit: 1 } })).body.length, 1);
    assert.equal((await bank.ordersClient.listOrders({ query: { customerId: owner.customerId, accountId: randomUUID() } })).body.length, 0);
  });

  test('invalid input → 400 naming the field', async () => {
    const owner = { customerId: randomUUID(), accountId: randomUUID() };
    const post = async (body: unknown, headers: Record<string, string> = { 'idempotency-key': randomUUID() }) => {
      const res = await fetch(`${bank.orders.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
      return { status: res.status, type: res.headers.get('content-type'), problem: (await res.json()) as { code: string; errors?: { field: string }[] } };
    };
    const valid = { ...owner, symbol: 'AAPL', side: 'buy', quantity: 1, type: 'market' };
    const cases: [unknown, string, Record<string, string>?][] = [
      [{ ...valid, quantity: 0 }, 'body.quantity'],
      [{ ...valid, quantity: 1.5 }, 'body.quantity'],
      [{ ...valid, symbol: 'aapl' }, 'body.symbol'],
      [{ ...valid, side: 'short' }, 'body.side'],
      [{ ...valid, accountId: 'nope' }, 'body.accountId'],
      [{ ...valid, type: 'limit' }, 'body.limitPrice'],
      [{ ...valid, limitPrice: '10.00' }, 'body.limitPrice'],
      [{ ...valid, type: 'limit', limitPrice: '10.001' }, 'body.limitPrice'],
      [{ ...valid, customerId: undefined }, 'body.customerId'],
      [valid, 'headers.idempotency-key', {}],
    ];
    for (const [body, field, headers] of cases) {
      const res = await post(body, headers);
      assert.equal(res.status, 400, `${field}: ${JSON.stringify(res.problem)}`);
      assert.match(res.type ?? '', /application\/problem\+json/);
      assert.equal(res.problem.code, 'validation_failed');
      assert.ok(res.problem.errors?.some((e) => e.field === field), `expected an error on ${field}, got ${JSON.stringify(res.problem.errors)}`);
    }
    const badId = await fetch(`${bank.orders.url}/orders/not-a-uuid`);
    assert.equal(badId.status, 400);
    const list = await fetch(`${bank.orders.url}/orders`);
    assert.equal(list.status, 400, 'listing needs a customerId');
  });
});
