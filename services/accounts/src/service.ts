import { defineService } from '@simplebank/chassis';
import { accountsContract } from './contract.ts';
import { subscriptions } from './events.ts';
import { routes } from './http.ts';

export const service = defineService({
  contract: accountsContract,
  defaultPort: 8082,
  migrations: new URL('../migrations/', import.meta.url),
  bus: true,
  setup(ctx) {
    return { routes: routes(ctx), subscriptions: subscriptions(ctx) };
  },
});
