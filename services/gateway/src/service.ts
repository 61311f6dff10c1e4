import { defineService, runWithContext, urlEnvName } from '@simplebank/chassis';
import { accountsContract } from '@simplebank/accounts/contract';
import { customersContract, JWT_AUDIENCE, JWT_ISSUER } from '@simplebank/customers/contract';
import { marketDataContract } from '@simplebank/market-data/contract';
import { ordersContract } from '@simplebank/orders/contract';
import { z } from 'zod';
import { createAuthenticator } from './auth.ts';
import { anonymousRoutes, gatewayContract, type GatewayRoute } from './contract.ts';
import { createHandlers } from './http.ts';
import { publicOpenApi } from './openapi.ts';

/** `METHOD /path/:param` → operation, to find which contract route a request matched. */
const operations = new Map<string, GatewayRoute>(
  (Object.entries(gatewayContract.routes) as [GatewayRoute, { method: string; path: string }][]).map(([name, def]) => [`${def.method} ${def.path}`, name]),
);

/** The gateway: SimpleBank's only public entry. Stateless (no database, no bus): it authenticates and maps. */
export const service = defineService({
  contract: gatewayContract,
  defaultPort: 8080,
  dependencies: { customers: customersContract, accounts: accountsContract, orders: ordersContract, marketData: marketDataContract },
  config: {
    JWT_CLOCK_TOLERANCE_SECONDS: z.coerce.number().int().min(0).max(300).default(5).describe('allowed clock skew when checking token times'),
  },
  setup(ctx) {
    // The dependency URLs are validated by the chassis but not typed on ctx.config.
    const customersUrl = (ctx.config as unknown as Record<string, string>)[urlEnvName(customersContract.service)]!;
    const auth = createAuthenticator({
      jwksUrl: new URL(customersUrl.replace(/\/+$/, '') + customersContract.routes.jwks.path),
      issuer: JWT_ISSUER,
      audience: JWT_AUDIENCE,
      clockToleranceSeconds: ctx.config.JWT_CLOCK_TOLERANCE_SECONDS,
      log: ctx.log,
    });
    const openapi = JSON.stringify(publicOpenApi());

    return {
      routes: createHandlers(ctx.clients, ctx.log),
      extend(app) {
        // Authenticate before the body is read and validated: an anonymous caller learns nothing but 401.
        // The customer id goes on the request's work context, where the handlers (and logs) find it.
        app.addHook('onRequest', async (request) => {
          const url = request.routeOptions.url;
          if (!url) return; // unknown route: the 404 handler answers
          const operation = operations.get(`${request.method === 'HEAD' ? 'GET' : request.method} ${url}`);
          if (!operation || anonymousRoutes.has(operation)) return;
          // Inside the request's context, so a warning about unobtainable keys carries its request and trace ids.
          request.work.customerId = await runWithContext(request.work, () => auth.verify(request.headers.authorization));
        });
        app.addHook('onSend', async (request, _reply, payload) => (request.routeOptions.url === '/openapi.json' ? openapi : payload));
      },
    };
  },
});
