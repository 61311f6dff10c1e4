import { basisPoints, formatMoney, max, min, type Minor } from '@simplebank/money';

/**
 * The commission rule, kept free of I/O so it can be tested exhaustively and so a quote, a charge and the
 * estimate orders reserves for all agree to the cent.
 */
export interface FeeSchedule {
  /** Commission in basis points of the notional (10 bps = 0.10%). */
  bps: number;
  /** Smallest fee for a non-zero trade, in cents. */
  minimum: Minor;
  /** Largest fee for any trade, in cents. */
  maximum: Minor;
}

/** The largest rate we accept: 100% of the notional. Anything above is a typo in the config, not a business rule. */
export const MAX_BPS = 10_000;

export class InvalidScheduleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidScheduleError';
  }
}

/** Checks what the per-key config schema can't: the relation between the keys. */
export function validateSchedule(schedule: FeeSchedule): FeeSchedule {
  if (!Number.isSafeInteger(schedule.bps) || schedule.bps < 0 || schedule.bps > MAX_BPS) {
    throw new InvalidScheduleError(`bps must be a whole number between 0 and ${MAX_BPS}, got ${schedule.bps}`);
  }
  if (schedule.minimum < 0n) throw new InvalidScheduleError('minimum must not be negative');
  if (schedule.minimum > schedule.maximum) {
    throw new InvalidScheduleError(`minimum (${formatMoney(schedule.minimum)}) must not exceed maximum (${formatMoney(schedule.maximum)})`);
  }
  return schedule;
}

/**
 * fee = clamp(round-half-up(notional × bps / 10 000), minimum, maximum), all in integer cents.
 *
 * A zero notional costs nothing: the minimum is a charge per trade, and a zero-value trade is no trade
 * (the minimum would otherwise make a fee out of nothing). The minimum may exceed a tiny notional; that is
 * the point of a minimum.
 */
export function computeFee(notional: Minor, schedule: FeeSchedule): Minor {
  if (notional < 0n) throw new RangeError(`notional must not be negative: ${formatMoney(notional)}`);
  if (notional === 0n) return 0n;
  const proportional = basisPoints(notional, schedule.bps, 'half-up');
  return min(max(proportional, schedule.minimum), schedule.maximum);
}
