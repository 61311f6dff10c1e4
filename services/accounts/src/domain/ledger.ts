import { formatMoney } from '@simplebank/money';

/**
 * Double-entry core. A journal entry is a set of postings that moves assets between ledger accounts; within
 * one entry the amounts of each asset sum to zero, so money and shares are only ever moved, never created —
 * except from the system accounts that stand for the world outside the bank.
 *
 * Amounts are bigints: cents for a currency, whole shares for a ticker.
 */

export type EntryKind = 'deposit' | 'trade';

export interface Posting {
  ledgerAccount: string;
  /** A currency code ("USD") or a ticker. */
  asset: string;
  amount: bigint;
}

export interface EntryDraft {
  kind: EntryKind;
  /** What the entry records (a deposit id, an order id); one entry per kind and reference. */
  reference: string;
  postings: Posting[];
}

export const SYSTEM_ACCOUNTS = {
  /** Where deposited cash comes from. */
  bank: 'external:bank',
  /** The exchange's side of every trade, for cash and shares. */
  clearing: 'exchange:clearing',
  fees: 'fees:revenue',
} as const;

export const CURRENCIES = ['USD'] as const;
export type CurrencyCode = (typeof CURRENCIES)[number];

export const customerLedgerAccount = (accountId: string): string => `customer:${accountId}`;

export const isCurrency = (asset: string): asset is CurrencyCode => (CURRENCIES as readonly string[]).includes(asset);

/**
 * Largest magnitude of a single posting: 10^15 minor units (ten trillion dollars, or a quadrillion shares).
 * Far above any real trade, and far enough below BIGINT's 9.2 × 10^18 that sums of many postings never overflow.
 */
export const MAX_POSTING = 10n ** 15n;

export class LedgerError extends Error {
  constructor(
    readonly code: 'unbalanced_entry' | 'empty_entry' | 'amount_out_of_range',
    message: string,
  ) {
    super(message);
    this.name = 'LedgerError';
  }
}

/** Sum per asset of the postings; an entry is balanced when every sum is zero. */
export function sumsByAsset(postings: readonly Posting[]): Map<string, bigint> {
  const sums = new Map<string, bigint>();
  for (const p of postings) sums.set(p.asset, (sums.get(p.asset) ?? 0n) + p.amount);
  return sums;
}

/** Assets whose postings do not sum to zero, with the amount left over. */
export function imbalances(postings: readonly Posting[]): { asset: string; sum: bigint }[] {
  return [...sumsByAsset(postings)].filter(([, sum]) => sum !== 0n).map(([asset, sum]) => ({ asset, sum }));
}

/**
 * Builds an entry, refusing one that would not balance. Zero postings are dropped (a zero fee is no movement),
 * so callers can describe a trade uniformly.
 */
export function journalEntry(kind: EntryKind, reference: string, postings: readonly Posting[]): EntryDraft {
  const moving = postings.filter((p) => p.amount !== 0n);
  if (moving.length < 2) throw new LedgerError('empty_entry', `a ${kind} entry needs at least two non-zero postings`);
  const tooLarge = moving.find((p) => p.amount > MAX_POSTING || p.amount < -MAX_POSTING);
  if (tooLarge) throw new LedgerError('amount_out_of_range', `a posting of ${formatAmount(tooLarge.asset, tooLarge.amount)} ${tooLarge.asset} exceeds the ledger's limit`);
  const off = imbalances(moving);
  if (off.length > 0) {
    const detail = off.map((o) => `${o.asset} ${formatAmount(o.asset, o.sum)}`).join(', ');
    throw new LedgerError('unbalanced_entry', `${kind} entry ${reference} does not balance: ${detail}`);
  }
  return { kind, reference, postings: moving };
}

/** Net movement per asset for one ledger account within the postings. */
export function netFor(ledgerAccount: string, postings: readonly Posting[]): Map<string, bigint> {
  return sumsByAsset(postings.filter((p) => p.ledgerAccount === ledgerAccount));
}

/** Wire form of an amount: a decimal string for cash, a whole number for shares. */
export const formatAmount = (asset: string, amount: bigint): string => (isCurrency(asset) ? formatMoney(amount) : amount.toString());
