import { createStaleCache, defineService, runWithContext, serviceFetch, urlEnvName, type RateLimitGroup, type RateLimitRule } from '@simplebank/chassis';
import type { Price } from '@simplebank/market-data/contract';
import { accountsContract } from '@simplebank/accounts/contract';
import { customersContract, JWT_AUDIENCE, JWT_ISSUER } from '@simplebank/customers/contract';
import { marketDataContract } from '@simplebank/market-data/contract';
import { ordersContract } from '@simplebank/orders/contract';
import { z } from 'zod';
import { createAuthenticator } from './auth.ts';
import { anonymousRoutes, gatewayContract, type GatewayRoute } from './contract.ts';
import { createHandlers, marketDataFailed } from './http.ts';
import { publicOpenApi } from './openapi.ts';

/** `METHOD /path/:param` → operation, to find which contract route a request matched. */
const operations = new Map<string, GatewayRoute>(
  (Object.entries(gatewayContract.routes) as [GatewayRoute, { method: string; path: string }][]).map(([name, def]) => [`${def.method} ${def.path}`, name]),
);

/**
 * Per-client rate limits (a client is a verified token's customer, else an IP address). Generous: they stop a
 * runaway client, not a busy one. The default rule allows 100 requests/s sustained with bursts of 1000 (a
 * screen fanning out, a script paging through orders); placing and cancelling orders, which start a saga each,
 * 30/s with bursts of 300. The place-order benchmark sends 5 orders/s per customer. Env overrides:
 * RATE_LIMIT_LIMIT / RATE_LIMIT_WINDOW_MS, RATE_LIMIT_ORDERS_LIMIT / RATE_LIMIT_ORDERS_WINDOW_MS.
 */
export const RATE_LIMIT_DEFAULT_RULE: RateLimitRule = { limit: 1_000, windowMs: 10_000 };
export const RATE_LIMIT_GROUPS: RateLimitGroup[] = [{ name: 'orders', routes: ['POST /api/v1/orders', 'DELETE /api/v1/orders/:id'], limit: 300, windowMs: 10_000 }];

/** The gateway: SimpleBank's only public entry. Stateless (no database, no bus): it authenticates and maps. */
export const service = defineService({
  contract: gatewayContract,
  defaultPort: 8080,
  dependencies: { customers: customersContract, accounts: accountsContract, orders: ordersContract, marketData: marketDataContract },
  // The edge sets every operation's deadline; the services behind inherit what is left of it.
  requestDeadlineMs: 10_000,
  protection: {
    rateLimit: {
      defaultRule: RATE_LIMIT_DEFAULT_RULE,
      groups: RATE_LIMIT_GROUPS,
      // Set by the authentication hook (service.ts below) from the verified token; anonymous requests go by IP.
      keyFor: (request) => request.work.customerId,
    },
  },
  config: {
    JWT_CLOCK_TOLERANCE_SECONDS: z.coerce.number().int().min(0).max(300).default(5).describe('allowed clock skew when checking token times'),
    GATEWAY_PRICE_BUDGET_MS: z.coerce
      .number()
      .int()
      .min(1)
      .max(60_000)
      .default(1_000)
      .describe('time allowed for a fresh price from market-data (all attempts) before the last known one is served, marked stale'),
    GATEWAY_PRICE_TTL_MS: z.coerce.number().int().min(0).max(60_000).default(0).describe('how long a fetched price is served without asking market-data again (0 = ask every time)'),
    GATEWAY_PRICE_MAX_STALE_MS: z.coerce
      .number()
      .int()
      .min(0)
      .max(86_400_000)
      .default(300_000)
      .describe('how old a price may be and still be served (marked stale) while market-data fails; older: 503'),
  },
  setup(ctx) {
    // The dependency URLs are validated by the chassis but not typed on ctx.config.
    const customersUrl = (ctx.config as unknown as Record<string, string>)[urlEnvName(customersContract.service)]!;
    // Over customers' Unix socket when the runner gave one (`unix:<path>`), as the typed clients do.
    const customers = serviceFetch(customersUrl);
    const auth = createAuthenticator({
      jwksUrl: new URL(customers.origin + customersContract.routes.jwks.path),
      fetch: customers.fetch,
      issuer: JWT_ISSUER,
      audience: JWT_AUDIENCE,
      clockToleranceSeconds: ctx.config.JWT_CLOCK_TOLERANCE_SECONDS,
      log: ctx.log,
    });
    const openapi = JSON.stringify(publicOpenApi());

    return {
      routes: createHandlers(ctx.clients, ctx.log, {
        cache: createStaleCache<string, Price>({
          ttlMs: ctx.config.GATEWAY_PRICE_TTL_MS,
          maxStaleMs: ctx.config.GATEWAY_PRICE_MAX_STALE_MS,
          serveStaleOn: marketDataFailed,
        }),
        budgetMs: ctx.config.GATEWAY_PRICE_BUDGET_MS,
      }),
      // Before the body is read and validated (an anonymous caller learns nothing but 401), after load shedding (an
      // overloaded gateway does not verify tokens it will not serve), before rate limits (which count per customer).
      // The customer id goes on the request's work context, where the handlers (and logs) find it.
      async authenticate(request) {
        const url = request.routeOptions.url;
        if (!url) return;
        const operation = operations.get(`${request.method === 'HEAD' ? 'GET' : request.method} ${url}`);
        if (!operation || anonymousRoutes.has(operation)) return;
        // Inside the request's context, so a warning about unobtainable keys carries its request and trace ids.
        request.work.customerId = await runWithContext(request.work, () => auth.verify(request.headers.authorization));
      },
      extend(app) {
        app.addHook('onSend', async (request, _reply, payload) => (request.routeOptions.url === '/openapi.json' ? openapi : payload));
      },
    };
  },
});
