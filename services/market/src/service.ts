import { defineService } from '@simplebank/chassis';
import { marketDataContract } from '@simplebank/market-data/contract';
import { configShape, createExchange } from './config.ts';
import { marketContract } from './contract.ts';
import { exchangeSubscriptions } from './events.ts';
import { routes } from './http.ts';
import { startMatcher } from './matcher.ts';

export const service = defineService({
  contract: marketContract,
  defaultPort: 8084,
  migrations: new URL('../migrations/', import.meta.url),
  bus: true,
  dependencies: { marketData: marketDataContract },
  config: configShape,
  setup(ctx) {
    const exchange = createExchange(ctx.config);
    ctx.log.info({ hours: ctx.config.EXCHANGE_HOURS, timeZone: exchange.timeZone, latencyMs: ctx.config.EXCHANGE_LATENCY_MS, rejectRate: ctx.config.EXCHANGE_REJECT_RATE }, 'exchange configured');
    return {
      routes: routes(ctx.db, exchange),
      subscriptions: exchangeSubscriptions(ctx, exchange),
      background: () => {
        const matcher = startMatcher({
          db: ctx.db,
          publish: ctx.publish,
          log: ctx.log,
          marketData: ctx.clients.marketData,
          intervalMs: ctx.config.EXCHANGE_MATCH_INTERVAL_MS,
          priceTimeoutMs: ctx.config.EXCHANGE_PRICE_TIMEOUT_MS,
          rejectRate: ctx.config.EXCHANGE_REJECT_RATE,
        });
        return () => matcher.stop();
      },
    };
  },
});
