import type { Queryable } from '@simplebank/chassis';
import { accountsContract } from './contract.ts';
import type { AccountsContext } from './context.ts';
import { openAccount, type AccountRow } from './data.ts';

/**
 * Opens a customer's account in a currency once, however often it is asked for (an API call, a redelivered
 * registration event, both at once), and announces it only the time it is actually opened.
 */
export async function openAndAnnounce(
  ctx: Pick<AccountsContext, 'publish'>,
  tx: Queryable,
  customerId: string,
  currency: 'USD',
  cause?: { correlationId?: string; causationId?: string },
): Promise<{ account: AccountRow; created: boolean }> {
  const opened = await openAccount(tx, customerId, currency);
  if (opened.created) {
    await ctx.publish(tx, accountsContract.events.AccountOpened, {
      subject: opened.account.id,
      data: { accountId: opened.account.id, customerId, currency },
      ...cause,
    });
  }
  return opened;
}
