import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decide, limitAllows, type OpenOrder } from '../src/domain/matching.ts';

const T = 1_700_000_000_000;
const order = (o: Partial<OpenOrder>): OpenOrder => ({ side: 'buy', type: 'market', limitPrice: null, executeAfter: T, expiresAt: null, ...o });

describe('matching rules', () => {
  it('a limit trades only at the limit or better', () => {
    assert.ok(limitAllows('buy', 10_000n, 9_999n));
    assert.ok(limitAllows('buy', 10_000n, 10_000n));
    assert.ok(!limitAllows('buy', 10_000n, 10_001n));
    assert.ok(limitAllows('sell', 10_000n, 10_001n));
    assert.ok(limitAllows('sell', 10_000n, 10_000n));
    assert.ok(!limitAllows('sell', 10_000n, 9_999n));
  });

  it('a market order fills at the market price once the latency has passed', () => {
    assert.deepEqual(decide(order({}), T - 1, 15_000n), { action: 'wait' });
    assert.deepEqual(decide(order({}), T, 15_000n), { action: 'fill', price: 15_000n });
    assert.deepEqual(decide(order({ side: 'sell' }), T + 5, 15_000n), { action: 'fill', price: 15_000n });
  });

  it('a marketable limit order fills at the market price, never worse than the limit', () => {
    assert.deepEqual(decide(order({ type: 'limit', limitPrice: 20_000n }), T, 15_000n), { action: 'fill', price: 15_000n });
    assert.deepEqual(decide(order({ type: 'limit', side: 'sell', limitPrice: 10_000n }), T, 15_000n), { action: 'fill', price: 15_000n });
  });

  it('a limit order away from the market waits', () => {
    assert.deepEqual(decide(order({ type: 'limit', limitPrice: 10_000n }), T, 15_000n), { action: 'wait' });
    assert.deepEqual(decide(order({ type: 'limit', side: 'sell', limitPrice: 20_000n }), T, 15_000n), { action: 'wait' });
  });

  it('an order expires at its expiry, even if it could fill then', () => {
    const o = order({ type: 'limit', limitPrice: 20_000n, expiresAt: T + 1_000 });
    assert.equal(decide(o, T + 999, 15_000n).action, 'fill');
    assert.deepEqual(decide(o, T + 1_000, 15_000n), { action: 'expire' });
    assert.deepEqual(decide(o, T + 1_000, undefined), { action: 'expire' });
  });

  it('an unknown symbol is rejected', () => {
    assert.deepEqual(decide(order({}), T, undefined), { action: 'reject', reason: 'unknown symbol' });
  });

  it('the reject knob turns an execution into a rejection, and only an execution', () => {
    assert.deepEqual(decide(order({}), T, 15_000n, { rate: 0.5, draw: 0.2 }), { action: 'reject', reason: 'rejected by the exchange' });
    assert.equal(decide(order({}), T, 15_000n, { rate: 0.5, draw: 0.7 }).action, 'fill');
    assert.equal(decide(order({ type: 'limit', limitPrice: 10_000n }), T, 15_000n, { rate: 1, draw: 0 }).action, 'wait');
    assert.equal(decide(order({}), T, 15_000n, { rate: 0, draw: 0 }).action, 'fill');
  });
});
