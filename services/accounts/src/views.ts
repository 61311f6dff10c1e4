import { formatMoney } from '@simplebank/money';
import type { z } from 'zod';
import type { AccountDetail, AccountSummary, Entry, Reservation } from './contract.ts';
import { cashView, positionsView } from './domain/balances.ts';
import { formatAmount } from './domain/ledger.ts';
import { activeHolds, customerBalances, type AccountRow, type Balances, type ReservationRow, type StoredEntry } from './data.ts';
import type { Queryable } from '@simplebank/chassis';

// Wire shapes of stored rows: money as decimal strings, shares as numbers.

const shareCount = (n: bigint): number => {
  if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < -BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`share count ${n} is beyond a safe JSON number`);
  return Number(n);
};

export async function accountDetail(q: Queryable, account: AccountRow): Promise<z.input<typeof AccountDetail>> {
  const [sums, holds] = await Promise.all([customerBalances(q, account.id), activeHolds(q, account.id)]);
  return detailView(account, { sums, holds });
}

/** The account as shown, from balances already read. */
export function detailView(account: AccountRow, { sums, holds }: Balances): z.input<typeof AccountDetail> {
  const cash = cashView(sums.get(account.currency) ?? 0n, holds.cash);
  return {
    id: account.id,
    customerId: account.customer_id,
    currency: account.currency,
    cash: { balance: formatMoney(cash.balance), available: formatMoney(cash.available), reserved: formatMoney(cash.reserved) },
    positions: positionsView(sums, holds.shares).map((p) => ({
      symbol: p.symbol,
      quantity: shareCount(p.quantity),
      reserved: shareCount(p.reserved),
      available: shareCount(p.available),
    })),
  };
}

export async function accountSummary(q: Queryable, account: AccountRow): Promise<z.input<typeof AccountSummary>> {
  const { positions: _positions, ...summary } = await accountDetail(q, account);
  return summary;
}

export const reservationView = (r: ReservationRow): z.input<typeof Reservation> => ({
  id: r.id,
  accountId: r.account_id,
  kind: r.kind,
  symbol: r.symbol,
  amount: r.amount === null ? null : formatMoney(BigInt(r.amount)),
  quantity: r.quantity === null ? null : shareCount(BigInt(r.quantity)),
  status: r.status,
});

export const entryView = (e: StoredEntry): z.input<typeof Entry> => ({
  id: e.id,
  kind: e.kind,
  reference: e.reference,
  createdAt: e.createdAt.toISOString(),
  postings: e.postings.map((p) => ({ ledgerAccount: p.ledgerAccount, asset: p.asset, amount: formatAmount(p.asset, p.amount) })),
});
