/**
 * The simulated exchange's matching rules: when an open order executes, at what price, and when it expires.
 * Prices are integer cents (bigint). Pure: the caller supplies the price, the clock and the dice.
 */

export type Side = 'buy' | 'sell';
export type OrderType = 'market' | 'limit';

export interface OpenOrder {
  side: Side;
  type: OrderType;
  /** Cents; required for limit orders. */
  limitPrice: bigint | null;
  /** Epoch ms before which the exchange has not yet "received" the order (simulated latency). */
  executeAfter: number;
  /** Epoch ms at which a resting order expires; null = never (market orders). */
  expiresAt: number | null;
}

export type Decision =
  | { action: 'fill'; price: bigint }
  | { action: 'expire' }
  | { action: 'reject'; reason: string }
  | { action: 'wait' };

/** A limit order may trade at `price` only at its limit or better: buy at or below, sell at or above. */
export function limitAllows(side: Side, limitPrice: bigint, price: bigint): boolean {
  return side === 'buy' ? price <= limitPrice : price >= limitPrice;
}

export const isExpired = (order: Pick<OpenOrder, 'expiresAt'>, nowMs: number): boolean => order.expiresAt !== null && order.expiresAt <= nowMs;

/**
 * What the exchange does with an open order now, given the market price (undefined = none known for the symbol)
 * and a rejection draw (`rejectDraw < rejectRate` → the exchange refuses the execution; a fault knob).
 * Expiry wins over a fill at the same instant: an order is good *until* its expiry, not at it.
 * Fills happen at the market price, which for a marketable limit order is at least as good as the limit.
 */
export function decide(order: OpenOrder, nowMs: number, price: bigint | undefined, rejection: { rate: number; draw: number } = { rate: 0, draw: 1 }): Decision {
  if (isExpired(order, nowMs)) return { action: 'expire' };
  if (nowMs < order.executeAfter) return { action: 'wait' };
  if (price === undefined) return { action: 'reject', reason: 'unknown symbol' };
  if (price <= 0n) return { action: 'wait' };
  if (order.type === 'limit') {
    if (order.limitPrice === null) return { action: 'reject', reason: 'limit order without a limit price' };
    if (!limitAllows(order.side, order.limitPrice, price)) return { action: 'wait' };
  }
  if (rejection.draw < rejection.rate) return { action: 'reject', reason: 'rejected by the exchange' };
  return { action: 'fill', price };
}
