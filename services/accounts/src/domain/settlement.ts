import { times } from '@simplebank/money';
import { customerLedgerAccount, journalEntry, SYSTEM_ACCOUNTS, type CurrencyCode, type EntryDraft } from './ledger.ts';

export type Side = 'buy' | 'sell';

export interface Trade {
  orderId: string;
  accountId: string;
  currency: CurrencyCode;
  side: Side;
  symbol: string;
  quantity: number;
  /** Per share, minor units. */
  price: bigint;
  fee: bigint;
}

/** price × quantity, exact. */
export const grossAmount = (trade: Pick<Trade, 'price' | 'quantity'>): bigint => times(trade.price, trade.quantity);

/** Cash that leaves the customer for a buy (gross + fee), or arrives for a sell (gross − fee; negative if the fee is larger). */
export function netCash(trade: Pick<Trade, 'side' | 'price' | 'quantity' | 'fee'>): bigint {
  const gross = grossAmount(trade);
  return trade.side === 'buy' ? gross + trade.fee : gross - trade.fee;
}

/**
 * The entry for an executed trade. The exchange's clearing account is the counterparty for both legs, and the
 * fee is always the customer's cost: added to what a buyer pays, taken from what a seller receives.
 *
 *   buy:  customer USD −(gross + fee), clearing USD +gross, fees USD +fee, customer SYM +qty, clearing SYM −qty
 *   sell: customer SYM −qty, clearing SYM +qty, customer USD +(gross − fee), clearing USD −gross, fees USD +fee
 */
export function tradeEntry(trade: Trade): EntryDraft {
  if (!Number.isSafeInteger(trade.quantity) || trade.quantity <= 0) throw new RangeError('quantity must be a positive whole number');
  if (trade.price <= 0n) throw new RangeError('price must be positive');
  if (trade.fee < 0n) throw new RangeError('fee must not be negative');
  const customer = customerLedgerAccount(trade.accountId);
  const gross = grossAmount(trade);
  const shares = BigInt(trade.quantity);
  const toCustomer = trade.side === 'buy' ? 1n : -1n;
  return journalEntry('trade', trade.orderId, [
    { ledgerAccount: customer, asset: trade.symbol, amount: toCustomer * shares },
    { ledgerAccount: SYSTEM_ACCOUNTS.clearing, asset: trade.symbol, amount: -toCustomer * shares },
    { ledgerAccount: customer, asset: trade.currency, amount: -toCustomer * gross - trade.fee },
    { ledgerAccount: SYSTEM_ACCOUNTS.clearing, asset: trade.currency, amount: toCustomer * gross },
    { ledgerAccount: SYSTEM_ACCOUNTS.fees, asset: trade.currency, amount: trade.fee },
  ]);
}
