import { defineService } from '@simplebank/chassis';
import { z } from 'zod';
import { ordersContract } from './contract.ts';
import { DEFAULT_SLIPPAGE_BPS } from './domain/reservation.ts';
import { sagaTransactions, subscriptions } from './events.ts';
import { routes } from './http.ts';
import { orderMetrics } from './metrics.ts';
import { createSaga, dependencies } from './saga.ts';

export const service = defineService({
  contract: ordersContract,
  defaultPort: 8083,
  migrations: new URL('../migrations/', import.meta.url),
  bus: true,
  dependencies,
  config: {
    ORDER_SLIPPAGE_BPS: z.coerce
      .number()
      .int()
      .min(0)
      .max(10_000)
      .default(DEFAULT_SLIPPAGE_BPS)
      .describe('extra cash held for a market buy above the current price, in basis points (500 = 5%)'),
    ORDER_RESERVE_ATTEMPTS: z.coerce
      .number()
      .int()
      .min(1)
      .max(50)
      .default(10)
      .describe('deliveries of the reserve step before an order is rejected because accounts, fees or market-data stay unavailable'),
    ORDER_RETRY_BACKOFF_MS: z.coerce.number().int().min(10).max(60_000).default(250).describe('first retry delay of a failed saga step; doubles each attempt'),
    ORDER_PRICE_CACHE_MS: z.coerce
      .number()
      .int()
      .min(0)
      .max(60_000)
      .default(200)
      .describe('how long a market price fetched for sizing a hold is reused for other orders (market-data quotes in 1 s ticks); 0 = fetch for every order'),
    ORDER_QUOTE_CACHE_MS: z.coerce
      .number()
      .int()
      .min(0)
      .max(600_000)
      .default(5_000)
      .describe('how long the fee quoted for a notional is reused (a quote is a pure function of the notional and the schedule); 0 = ask fees every time'),
  },
  setup(ctx) {
    const metrics = orderMetrics(ctx.metrics);
    const saga = createSaga({
      clients: ctx.clients,
      publish: ctx.publish,
      log: ctx.log,
      slippageBps: ctx.config.ORDER_SLIPPAGE_BPS,
      reserveMaxAttempts: ctx.config.ORDER_RESERVE_ATTEMPTS,
      priceCacheMs: ctx.config.ORDER_PRICE_CACHE_MS,
      quoteCacheMs: ctx.config.ORDER_QUOTE_CACHE_MS,
      metrics,
    });
    const retry = { reserveAttempts: ctx.config.ORDER_RESERVE_ATTEMPTS, backoffMs: ctx.config.ORDER_RETRY_BACKOFF_MS };
    return { routes: routes(ctx, metrics), subscriptions: subscriptions(saga, retry, sagaTransactions(ctx.config.DB_POOL_MAX)) };
  },
});
