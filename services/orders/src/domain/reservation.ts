/**
 * How much an order must hold at accounts before it may go to the exchange. Pure arithmetic on minor units.
 *
 * - buy, market: the price may move before execution, so hold quantity × price × (1 + slippage), rounded up
 *   to the cent, plus the fee that notional would cost.
 * - buy, limit: the order never executes above its limit, so quantity × limit price plus its fee.
 * - sell: the shares themselves; the fee is taken from the proceeds at settlement, so no cash is held.
 */
import { scale, times, type Minor } from '@simplebank/money';
import type { OrderType, Side } from './order.ts';

export const DEFAULT_SLIPPAGE_BPS = 500;
const BPS = 10_000n;

export interface ReservableOrder {
  accountId: string;
  symbol: string;
  side: Side;
  type: OrderType;
  quantity: number;
  limitPrice: Minor | null;
}

export type ReservationPlan =
  | { kind: 'cash'; accountId: string; amount: Minor; notional: Minor; fee: Minor }
  | { kind: 'shares'; accountId: string; symbol: string; quantity: number };

/** Whether the reservation holds cash (and so needs a fee estimate first). */
export const holdsCash = (order: Pick<ReservableOrder, 'side'>): boolean => order.side === 'buy';

/**
 * The most a buy can cost before fees: the notional the fee estimate is quoted on.
 * `marketPrice` is only used by market orders; limit orders are bounded by their limit.
 */
export function maxNotional(order: ReservableOrder, marketPrice: Minor, slippageBps: number = DEFAULT_SLIPPAGE_BPS): Minor {
  if (order.side !== 'buy') throw new RangeError('only buys hold cash');
  if (!Number.isSafeInteger(slippageBps) || slippageBps < 0) throw new RangeError(`slippage must be a whole, non-negative number of basis points: ${slippageBps}`);
  if (order.type === 'limit') {
    if (order.limitPrice === null) throw new RangeError('a limit order needs a limit price');
    return times(order.limitPrice, order.quantity);
  }
  if (marketPrice <= 0n) throw new RangeError('market price must be positive');
  // Round up: holding a cent too much is harmless, a cent too little fails the settlement.
  return scale(times(marketPrice, order.quantity), BPS + BigInt(slippageBps), BPS, 'up');
}

/** The reservation to ask accounts for; `feeEstimate` is the fee quoted on `maxNotional` (buys only). */
export function planReservation(
  order: ReservableOrder,
  pricing: { marketPrice: Minor; slippageBps?: number; feeEstimate?: Minor },
): ReservationPlan {
  if (order.side === 'sell') return { kind: 'shares', accountId: order.accountId, symbol: order.symbol, quantity: order.quantity };
  const fee = pricing.feeEstimate;
  if (fee === undefined) throw new RangeError('a buy needs a fee estimate');
  if (fee < 0n) throw new RangeError('fee estimate must not be negative');
  const notional = maxNotional(order, pricing.marketPrice, pricing.slippageBps);
  return { kind: 'cash', accountId: order.accountId, amount: notional + fee, notional, fee };
}
