import { isCurrency } from './ledger.ts';

/**
 * A balance is the sum of an account's postings (for a customer, stored as the postings are written: migration
 * 004), and what is free to use is that balance less the active holds (their totals stored as the holds are
 * written: migration 005). Both stored figures are kept by triggers in the writing transaction, so cash and
 * positions always equal the ledger, and a hold can never drift from what it holds back.
 */

export interface CashView {
  balance: bigint;
  reserved: bigint;
  available: bigint;
}

export interface PositionView {
  symbol: string;
  quantity: bigint;
  reserved: bigint;
  available: bigint;
}

export const available = (total: bigint, held: bigint): bigint => total - held;

export function cashView(balance: bigint, held: bigint): CashView {
  return { balance, reserved: held, available: available(balance, held) };
}

/**
 * Positions from a customer's per-asset sums and share holds: every ticker that is held or reserved, by symbol.
 * Sums for currencies are cash, not positions, and are skipped.
 */
export function positionsView(sums: ReadonlyMap<string, bigint>, sharesHeld: ReadonlyMap<string, bigint>): PositionView[] {
  const symbols = new Set([...sums.keys(), ...sharesHeld.keys()].filter((a) => !isCurrency(a)));
  return [...symbols]
    .sort()
    .map((symbol) => {
      const quantity = sums.get(symbol) ?? 0n;
      const reserved = sharesHeld.get(symbol) ?? 0n;
      return { symbol, quantity, reserved, available: available(quantity, reserved) };
    })
    .filter((p) => p.quantity !== 0n || p.reserved !== 0n);
}
