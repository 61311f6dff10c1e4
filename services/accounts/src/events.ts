import type { Subscription } from '@simplebank/chassis';
import { customersContract } from '@simplebank/customers/contract';
import type { AccountsContext } from './context.ts';
import { openAndAnnounce } from './open-account.ts';

type CustomerRegistered = typeof customersContract.events.CustomerRegistered;

/** Every new customer gets a USD account without having to ask for one. */
export function subscriptions(ctx: AccountsContext): Subscription[] {
  const openOnRegistration: Subscription<CustomerRegistered> = {
    name: 'accounts.open-on-registration',
    events: [customersContract.events.CustomerRegistered],
    async handle(event, tx) {
      await openAndAnnounce(ctx, tx, event.data.customerId, 'USD', { correlationId: event.correlationId, causationId: event.id });
    },
    maxAttempts: 8,
    backoffMs: 200,
  };
  return [openOnRegistration];
}
