import { customerLedgerAccount, journalEntry, SYSTEM_ACCOUNTS, type CurrencyCode, type EntryDraft } from './ledger.ts';

/** Cash arrives from outside the bank: the bank's external account goes down by what the customer's goes up. */
export function depositEntry(input: { depositId: string; accountId: string; currency: CurrencyCode; amount: bigint }): EntryDraft {
  if (input.amount <= 0n) throw new RangeError('a deposit must be positive');
  return journalEntry('deposit', input.depositId, [
    { ledgerAccount: SYSTEM_ACCOUNTS.bank, asset: input.currency, amount: -input.amount },
    { ledgerAccount: customerLedgerAccount(input.accountId), asset: input.currency, amount: input.amount },
  ]);
}
