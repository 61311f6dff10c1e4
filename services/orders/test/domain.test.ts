import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FINAL_STATUSES, Order, OrderError, type NewOrder, type OrderStatus } from '../src/domain/order.ts';
import { DEFAULT_SLIPPAGE_BPS, holdsCash, maxNotional, planReservation, type ReservableOrder } from '../src/domain/reservation.ts';

const T0 = new Date('2025-01-02T10:00:00Z');
const T1 = new Date('2025-01-02T10:00:01Z');

const newOrder = (over: Partial<NewOrder> = {}): NewOrder => ({
  id: '00000000-0000-4000-8000-000000000001',
  customerId: '00000000-0000-4000-8000-000000000002',
  accountId: '00000000-0000-4000-8000-000000000003',
  symbol: 'AAPL',
  side: 'buy',
  quantity: 10,
  type: 'market',
  limitPrice: null,
  ...over,
});

const FILL = { quantity: 10, price: 15_000n, fee: 150n };

/** An order driven to `status` through legal transitions, loaded fresh (no pending changes). */
function orderIn(status: OrderStatus): Order {
  const o = Order.submit(newOrder(), T0);
  const path: Record<OrderStatus, (o: Order) => void> = {
    pending: () => {},
    accepted: (o) => o.accept(T0),
    placed: (o) => (o.accept(T0), o.place(T0)),
    filled: (o) => (o.accept(T0), o.place(T0), o.fill(FILL, T0)),
    rejected: (o) => o.reject('insufficient funds', T0),
    expired: (o) => (o.accept(T0), o.place(T0), o.expire(T0)),
    cancelled: (o) => o.cancel(T0),
  };
  path[status](o);
  return Order.from(o.state);
}

type Action = 'accept' | 'place' | 'fill' | 'reject' | 'expire' | 'cancel' | 'requestCancel';
const act: Record<Action, (o: Order) => unknown> = {
  accept: (o) => o.accept(T1),
  place: (o) => o.place(T1),
  fill: (o) => o.fill(FILL, T1),
  reject: (o) => o.reject('no', T1),
  expire: (o) => o.expire(T1),
  cancel: (o) => o.cancel(T1),
  requestCancel: (o) => o.requestCancel(T1),
};

const ALL: OrderStatus[] = ['pending', 'accepted', 'placed', 'filled', 'rejected', 'expired', 'cancelled'];

/** The whole state machine: for each action, the statuses it is legal from and where it leads. */
const LEGAL: Record<Action, { from: OrderStatus[]; to: (from: OrderStatus) => OrderStatus }> = {
  accept: { from: ['pending'], to: () => 'accepted' },
  place: { from: ['accepted'], to: () => 'placed' },
  fill: { from: ['placed'], to: () => 'filled' },
  reject: { from: ['pending', 'accepted', 'placed'], to: () => 'rejected' },
  expire: { from: ['pending', 'accepted', 'placed'], to: () => 'expired' },
  cancel: { from: ['pending', 'accepted', 'placed'], to: () => 'cancelled' },
  requestCancel: { from: ['accepted', 'placed'], to: (from) => from },
};

describe('Order state machine', () => {
  test('submit creates a pending order with one history entry', () => {
    const o = Order.submit(newOrder(), T0);
    assert.equal(o.status, 'pending');
    assert.equal(o.state.filledQuantity, 0);
    assert.equal(o.state.averagePrice, null);
    assert.deepEqual(o.changes, [{ status: 'pending', at: T0 }]);
  });

  test('submit refuses a malformed order', () => {
    assert.throws(() => Order.submit(newOrder({ quantity: 0 }), T0), { code: 'invalid_order' });
    assert.throws(() => Order.submit(newOrder({ quantity: 1.5 }), T0), { code: 'invalid_order' });
    assert.throws(() => Order.submit(newOrder({ type: 'limit', limitPrice: null }), T0), { code: 'invalid_order' });
    assert.throws(() => Order.submit(newOrder({ type: 'market', limitPrice: 100n }), T0), { code: 'invalid_order' });
    assert.throws(() => Order.submit(newOrder({ type: 'limit', limitPrice: 0n }), T0), { code: 'invalid_order' });
  });

  for (const [action, rule] of Object.entries(LEGAL) as [Action, (typeof LEGAL)[Action]][]) {
    for (const from of ALL) {
      if (rule.from.includes(from)) {
        test(`${action}: ${from} → ${rule.to(from)}`, () => {
          const o = orderIn(from);
          act[action](o);
          assert.equal(o.status, rule.to(from));
          assert.equal(o.changes.length, 1, 'one history entry per transition');
          assert.equal(o.changes[0]!.status, rule.to(from));
          assert.equal(o.changes[0]!.at, T1);
          assert.equal(o.state.updatedAt, T1);
          // The acceptance time is set once, by accept (the completion-time metric counts from it).
          assert.equal(o.state.acceptedAt, action === 'accept' ? T1 : from === 'pending' ? null : T0);
        });
      } else {
        const final = FINAL_STATUSES.includes(from);
        test(`${action} from ${from} is refused (${final ? 'order_final' : 'illegal_transition'})`, () => {
          const o = orderIn(from);
          const before = { ...o.state };
          assert.throws(
            () => act[action](o),
            (err: unknown) => err instanceof OrderError && err.code === (final ? 'order_final' : 'illegal_transition') && err.from === from && err.action === action,
          );
          assert.deepEqual(o.state, before, 'a refused move changes nothing');
          assert.equal(o.changes.length, 0);
        });
      }
    }
  }

  test('the happy path records every status in order', () => {
    const o = Order.submit(newOrder(), T0);
    o.accept(T0);
    o.place(T0);
    o.fill(FILL, T1);
    assert.deepEqual(
      o.changes.map((c) => c.status),
      ['pending', 'accepted', 'placed', 'filled'],
    );
    assert.equal(o.state.filledQuantity, 10);
    assert.equal(o.state.averagePrice, 15_000n);
    assert.equal(o.state.fee, 150n);
    assert.equal(o.isFinal, true);
  });

  test('reject keeps its reason on the order and in the history', () => {
    const o = orderIn('pending');
    o.reject('insufficient funds', T1);
    assert.equal(o.state.reason, 'insufficient funds');
    assert.deepEqual(o.changes, [{ status: 'rejected', at: T1, reason: 'insufficient funds' }]);
  });

  test('fill refuses quantities outside the order and nonsense prices', () => {
    for (const bad of [
      { ...FILL, quantity: 0 },
      { ...FILL, quantity: 11 },
      { ...FILL, quantity: 2.5 },
      { ...FILL, price: 0n },
      { ...FILL, fee: -1n },
    ]) {
      const o = orderIn('placed');
      assert.throws(() => o.fill(bad, T1), { code: 'invalid_fill' });
      assert.equal(o.status, 'placed');
    }
  });

  test('checkFill says whether an execution fits, without changing anything', () => {
    const o = orderIn('placed');
    o.checkFill(10, 1n);
    o.checkFill(1, 15_000n);
    assert.throws(() => o.checkFill(11, 15_000n), { code: 'invalid_fill' });
    assert.throws(() => o.checkFill(0, 15_000n), { code: 'invalid_fill' });
    assert.throws(() => o.checkFill(5, 0n), { code: 'invalid_fill' });
    assert.equal(o.status, 'placed');
    assert.equal(o.changes.length, 0);
  });

  test('requestCancel keeps the status, records the request once, and says whether it was new', () => {
    const o = orderIn('placed');
    assert.equal(o.cancelRequested, false);
    assert.equal(o.requestCancel(T1), true);
    assert.equal(o.status, 'placed');
    assert.equal(o.cancelRequested, true);
    assert.equal(o.state.cancelRequestedAt, T1);
    assert.deepEqual(o.changes, [{ status: 'placed', at: T1, reason: 'cancel requested' }]);
    assert.equal(o.requestCancel(new Date(T1.getTime() + 1000)), false);
    assert.equal(o.changes.length, 1, 'a repeated request adds nothing');
    assert.equal(o.state.cancelRequestedAt, T1);
  });

  test('after a cancel request the exchange decides: fill or cancel are both still legal', () => {
    const filled = orderIn('placed');
    filled.requestCancel(T1);
    filled.fill(FILL, T1);
    assert.equal(filled.status, 'filled');
    const cancelled = orderIn('placed');
    cancelled.requestCancel(T1);
    cancelled.cancel(T1);
    assert.equal(cancelled.status, 'cancelled');
  });

  test('from() rehydrates without history; changes accumulate only for new transitions', () => {
    const o = orderIn('accepted');
    assert.equal(o.changes.length, 0);
    o.place(T1);
    assert.deepEqual(o.changes, [{ status: 'placed', at: T1 }]);
  });

  test('state is a copy: mutating the input does not change the aggregate', () => {
    const original = orderIn('pending').state;
    const copy = { ...original };
    const o = Order.from(copy);
    copy.status = 'filled';
    assert.equal(o.status, 'pending');
  });
});

describe('reservation amounts', () => {
  const buy = (over: Partial<ReservableOrder> = {}): ReservableOrder => ({
    accountId: 'a',
    symbol: 'AAPL',
    side: 'buy',
    type: 'market',
    quantity: 10,
    limitPrice: null,
    ...over,
  });

  test('default slippage is 5%', () => {
    assert.equal(DEFAULT_SLIPPAGE_BPS, 500);
  });

  test('buy market: quantity × price × (1 + slippage) + fee', () => {
    // 10 × 150.00 = 1500.00; +5% = 1575.00; + fee 7.88
    assert.equal(maxNotional(buy(), 15_000n, 500), 157_500n);
    assert.deepEqual(planReservation(buy(), { marketPrice: 15_000n, slippageBps: 500, feeEstimate: 788n }), {
      kind: 'cash',
      accountId: 'a',
      notional: 157_500n,
      fee: 788n,
      amount: 158_288n,
    });
  });

  test('buy market rounds the slipped notional up to the cent (never holds too little)', () => {
    // 3 × 0.33 = 0.99; × 1.05 = 1.0395 → 1.04
    assert.equal(maxNotional(buy({ quantity: 3 }), 33n, 500), 104n);
    // 1 × 0.01 × 1.0001 = 0.010001 → 0.02
    assert.equal(maxNotional(buy({ quantity: 1 }), 1n, 1), 2n);
    // exact: no rounding
    assert.equal(maxNotional(buy({ quantity: 2 }), 10_000n, 500), 21_000n);
  });

  test('slippage is configurable, including zero', () => {
    assert.equal(maxNotional(buy(), 15_000n, 0), 150_000n);
    assert.equal(maxNotional(buy(), 15_000n, 1_000), 165_000n);
    assert.equal(maxNotional(buy(), 15_000n), 157_500n, 'defaults to 500 bps');
    assert.throws(() => maxNotional(buy(), 15_000n, -1), RangeError);
    assert.throws(() => maxNotional(buy(), 15_000n, 1.5), RangeError);
  });

  test('buy limit: quantity × limit price + fee, whatever the market price', () => {
    const limit = buy({ type: 'limit', limitPrice: 14_000n });
    assert.equal(maxNotional(limit, 15_000n, 500), 140_000n);
    assert.equal(maxNotional(limit, 99_999n, 500), 140_000n);
    assert.deepEqual(planReservation(limit, { marketPrice: 15_000n, slippageBps: 500, feeEstimate: 700n }), {
      kind: 'cash',
      accountId: 'a',
      notional: 140_000n,
      fee: 700n,
      amount: 140_700n,
    });
  });

  test('sell: the shares, no cash and no fee estimate needed', () => {
    const sell = buy({ side: 'sell', quantity: 7 });
    assert.equal(holdsCash(sell), false);
    assert.equal(holdsCash(buy()), true);
    assert.deepEqual(planReservation(sell, { marketPrice: 15_000n }), { kind: 'shares', accountId: 'a', symbol: 'AAPL', quantity: 7 });
    assert.deepEqual(planReservation({ ...sell, type: 'limit', limitPrice: 1n }, { marketPrice: 15_000n }), {
      kind: 'shares',
      accountId: 'a',
      symbol: 'AAPL',
      quantity: 7,
    });
    assert.throws(() => maxNotional(sell, 15_000n), RangeError);
  });

  test('a buy without a fee estimate or with nonsense inputs is refused', () => {
    assert.throws(() => planReservation(buy(), { marketPrice: 15_000n }), RangeError);
    assert.throws(() => planReservation(buy(), { marketPrice: 15_000n, feeEstimate: -1n }), RangeError);
    assert.throws(() => maxNotional(buy(), 0n), RangeError);
    assert.throws(() => maxNotional(buy({ type: 'limit', limitPrice: null }), 15_000n), RangeError);
  });

  test('large orders stay exact (no float rounding)', () => {
    // 1 000 000 000 shares × 99 999.99 × 1.05
    assert.equal(maxNotional(buy({ quantity: 1_000_000_000 }), 9_999_999n, 500), 10_499_998_950_000_000n);
  });
});
