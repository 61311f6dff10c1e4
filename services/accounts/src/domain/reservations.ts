import { formatAmount, isCurrency } from './ledger.ts';
import type { Side } from './settlement.ts';

/**
 * Holds (reservations) keep cash or shares back for an open order. Their id is the order id, which makes every
 * operation on them safe to repeat: the saga may retry a reserve, a release or a settle as often as it needs.
 *
 *   active ──release──▶ released   (terminal)
 *   active ──settle───▶ settled    (terminal; the trade's journal entry replaces the hold)
 */

export type ReservationStatus = 'active' | 'settled' | 'released';

export type Hold = { kind: 'cash'; asset: string; amount: bigint } | { kind: 'shares'; asset: string; amount: bigint };

export interface Refusal {
  code: 'insufficient_funds' | 'insufficient_shares' | 'reservation_released' | 'reservation_mismatch';
  detail: string;
}

const shortfallCode = (asset: string): Refusal['code'] => (isCurrency(asset) ? 'insufficient_funds' : 'insufficient_shares');

/** A new hold fits when what is available covers it. */
export function checkHold(hold: Hold, availableNow: bigint): Refusal | undefined {
  if (availableNow >= hold.amount) return undefined;
  return {
    code: hold.kind === 'cash' ? 'insufficient_funds' : 'insufficient_shares',
    detail: `${formatAmount(hold.asset, hold.amount)} ${hold.asset} requested, ${formatAmount(hold.asset, availableNow)} available`,
  };
}

export type ReleaseOutcome = { release: true; status: 'released' } | { release: false; status: 'released' | 'settled' | 'unknown' };

/**
 * Releasing is a compensation and must always be able to finish: an already released or settled hold, or one
 * never made, answers with its state instead of failing.
 */
export function releaseOutcome(status: ReservationStatus | undefined): ReleaseOutcome {
  if (status === 'active') return { release: true, status: 'released' };
  return { release: false, status: status ?? 'unknown' };
}

export type SettleDecision = { action: 'settle' } | { action: 'already-settled' } | { action: 'refuse'; refusal: Refusal };

/** Whether a trade may settle this hold: only an active one, and a buy only a cash hold, a sell only that ticker's shares. */
export function settleDecision(reservation: { status: ReservationStatus; kind: 'cash' | 'shares'; symbol: string | null }, trade: { side: Side; symbol: string }): SettleDecision {
  if (reservation.status === 'settled') return { action: 'already-settled' };
  if (reservation.status === 'released') return { action: 'refuse', refusal: { code: 'reservation_released', detail: 'the reservation was released; the trade cannot settle against it' } };
  const expected = trade.side === 'buy' ? 'cash' : 'shares';
  if (reservation.kind !== expected) {
    return { action: 'refuse', refusal: { code: 'reservation_mismatch', detail: `a ${trade.side} settles a ${expected} reservation, this one holds ${reservation.kind}` } };
  }
  if (reservation.kind === 'shares' && reservation.symbol !== trade.symbol) {
    return { action: 'refuse', refusal: { code: 'reservation_mismatch', detail: `the reservation holds ${reservation.symbol ?? '?'} shares, the trade is in ${trade.symbol}` } };
  }
  return { action: 'settle' };
}

/**
 * Whether the customer can cover a settlement. Settling ends the hold, so what it held is free again and counts
 * towards the trade; beyond that, the trade may only use what is available. A buy that executes above the held
 * amount therefore settles if the account still has the difference available, and is refused otherwise —
 * the customer's available cash and shares never go below zero.
 *
 * `movement`: the customer's net change per asset in the trade's entry; `availableNow`: available per asset
 * with the hold still active.
 */
export function checkSettlementCover(movement: ReadonlyMap<string, bigint>, availableNow: ReadonlyMap<string, bigint>, hold: Hold): Refusal | undefined {
  for (const [asset, change] of movement) {
    if (change >= 0n) continue;
    const free = (availableNow.get(asset) ?? 0n) + (asset === hold.asset ? hold.amount : 0n);
    if (free + change < 0n) {
      return { code: shortfallCode(asset), detail: `the trade needs ${formatAmount(asset, -change)} ${asset}, ${formatAmount(asset, free)} is available including the hold` };
    }
  }
  return undefined;
}
