import { defineService } from '@simplebank/chassis';
import { z } from 'zod';
import { ordersContract } from './contract.ts';
import { DEFAULT_SLIPPAGE_BPS } from './domain/reservation.ts';
import { SAGA_BATCH, sagaTransactions, subscriptions } from './events.ts';
import { startReserveWorker } from './reserve-worker.ts';
import { routes } from './http.ts';
import { orderMetrics, reserveQueueMetrics } from './metrics.ts';
import { createSaga, dependencies } from './saga.ts';

/**
 * The longest wait between attempts of a reserve step that keeps failing. Once its attempts are spent the saga
 * rejects the order, which needs accounts to release any hold: while accounts stays down the step is taken again at
 * this interval, until it can end the order.
 */
const RESERVE_MAX_BACKOFF_MS = 60_000;

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
      .describe('attempts of the reserve step before an order is rejected because accounts, fees or market-data stay unavailable'),
    ORDER_RETRY_BACKOFF_MS: z.coerce.number().int().min(10).max(60_000).default(250).describe('first retry delay of a failed saga step; doubles each attempt'),
    ORDER_RESERVE_POLL_MS: z.coerce
      .number()
      .int()
      .min(10)
      .max(60_000)
      .default(1_000)
      .describe('how often the reserve worker looks for due steps without a wake-up (retries after a backoff, a missed NOTIFY)'),
    ORDER_GATHER_MS: z.coerce
      .number()
      .int()
      .min(0)
      .max(1_000)
      .default(50)
      .describe('least time between two transactions of saga steps (reserve rounds, market-event batches) while no full batch waits: what comes meanwhile is taken together (0 = start as soon as a slot is free)'),
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
    const transactions = sagaTransactions(ctx.config.DB_POOL_MAX);
    return {
      routes: routes(ctx, metrics),
      subscriptions: subscriptions(saga, { backoffMs: ctx.config.ORDER_RETRY_BACKOFF_MS, transactions, gatherMs: ctx.config.ORDER_GATHER_MS }),
      background: () => {
        reserveQueueMetrics(ctx.metrics, ctx.db, ctx.log);
        const worker = startReserveWorker({
          db: ctx.db,
          saga,
          log: ctx.log,
          startQueuedWork: ctx.startQueuedWork,
          batchSize: SAGA_BATCH,
          transactions,
          backoffMs: ctx.config.ORDER_RETRY_BACKOFF_MS,
          maxBackoffMs: RESERVE_MAX_BACKOFF_MS,
          pollIntervalMs: ctx.config.ORDER_RESERVE_POLL_MS,
          gatherMs: ctx.config.ORDER_GATHER_MS,
        });
        return () => worker.stop();
      },
    };
  },
});
