import { z } from 'zod';
import { defineService } from '@simplebank/chassis';
import { marketDataContract } from './contract.ts';
import { loadInstruments } from './data.ts';
import { DEFAULT_STEP_BPS } from './domain/random-walk.ts';
import { createPriceFeed } from './feed.ts';
import { routes } from './http.ts';
import { PRICE_STREAM_PATH, registerPriceStream } from './stream.ts';

export const service = defineService({
  contract: marketDataContract,
  defaultPort: 8085,
  migrations: new URL('../migrations/', import.meta.url),
  // A price stream is open for as long as its client listens: it must not hold a load-shedding slot meanwhile.
  protection: { sheddingExempt: [`GET ${PRICE_STREAM_PATH}`] },
  config: {
    MARKET_DATA_SEED: z.coerce.number().int().default(42).describe('seed of the price walk; instances with the same seed quote the same prices'),
    MARKET_DATA_TICK_MS: z.coerce.number().int().min(10).max(86_400_000).default(1000).describe('length of a price tick in ms'),
    MARKET_DATA_STEP_BPS: z.coerce.number().positive().max(1000).default(DEFAULT_STEP_BPS).describe('largest price move per tick, in basis points'),
  },
  async setup(ctx) {
    // Instruments are reference data that change only with a migration: read once, quote from memory.
    const rows = await loadInstruments(ctx.db);
    const feed = createPriceFeed({
      instruments: rows.map((r) => ({ symbol: r.symbol, name: r.name, currency: r.currency, baseCents: BigInt(r.base_price) })),
      seed: ctx.config.MARKET_DATA_SEED,
      tickMs: ctx.config.MARKET_DATA_TICK_MS,
      stepBps: ctx.config.MARKET_DATA_STEP_BPS,
    });
    ctx.log.info({ instruments: rows.length, seed: ctx.config.MARKET_DATA_SEED, tickMs: ctx.config.MARKET_DATA_TICK_MS }, 'price feed ready');

    return {
      routes: routes(feed),
      extend: (app) => {
        registerPriceStream(app, feed, ctx.log);
      },
    };
  },
});
