import { z } from 'zod';
import { isMoneyString, parseMoney } from './money.ts';

const MESSAGE = 'must be a decimal string with at most 2 decimals, e.g. "100.00"';

/** A non-negative amount on the wire: "0.00" … */
export const amountString = z.string().refine((v) => isMoneyString(v) && !v.startsWith('-'), MESSAGE);

/** A strictly positive amount on the wire. */
export const positiveAmountString = z.string().refine((v) => isMoneyString(v) && !v.startsWith('-') && parseMoney(v) > 0n, `${MESSAGE}, greater than zero`);

/** Any amount, possibly negative (ledger postings). */
export const signedAmountString = z.string().refine(isMoneyString, MESSAGE);

/** Whole number of shares, positive. */
export const quantity = z.number().int('must be a whole number of shares').positive('must be greater than zero').max(1_000_000_000);
