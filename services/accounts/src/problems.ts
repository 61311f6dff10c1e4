import { ProblemError } from '@simplebank/chassis';
import { LedgerError } from './domain/ledger.ts';
import type { Refusal } from './domain/reservations.ts';

// The problem codes callers branch on (orders, gateway); the detail text is for people.

export const accountNotFound = (): ProblemError => new ProblemError(404, 'account_not_found', 'account not found');

export const reservationNotFound = (): ProblemError => new ProblemError(404, 'reservation_not_found', 'no reservation with this id');

export const refused = (r: Refusal): ProblemError => new ProblemError(409, r.code, r.detail);

export const idempotencyKeyReused = (): ProblemError =>
  new ProblemError(409, 'idempotency_key_reused', 'this Idempotency-Key was already used for a deposit of a different amount');

/** Runs domain code, turning an amount the ledger cannot hold into a 422 instead of a 500. */
export function ledgerRules<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof LedgerError && err.code === 'amount_out_of_range') throw new ProblemError(422, err.code, err.message);
    throw err;
  }
}
