import { formatMoney } from '@simplebank/money';
import type { Price } from './contract.ts';
import { createPriceWalk, tickAt } from './domain/random-walk.ts';

export interface ListedInstrument {
  symbol: string;
  name: string;
  currency: 'USD';
  baseCents: bigint;
}

export interface PriceFeed {
  readonly tickMs: number;
  instruments(): readonly ListedInstrument[];
  has(symbol: string): boolean;
  tickAt(nowMs: number): number;
  /** The price of one symbol at the tick containing `nowMs`; undefined for an unlisted symbol. */
  price(symbol: string, nowMs: number): Price | undefined;
  /** Every listed symbol's price at one tick (all quoted as of the same instant). */
  prices(nowMs: number): Price[];
}

/** The instruments plus the shared walk: what the routes and the stream quote from. */
export function createPriceFeed(options: { instruments: ListedInstrument[]; seed: number; tickMs: number; stepBps: number }): PriceFeed {
  const walk = createPriceWalk({ seed: options.seed, stepBps: options.stepBps });
  const bySymbol = new Map(options.instruments.map((i) => [i.symbol, i]));
  const quote = (instrument: ListedInstrument, tick: number): Price => ({
    symbol: instrument.symbol,
    price: formatMoney(walk.priceAt(instrument.symbol, instrument.baseCents, tick)),
    // asOf is the tick's start: every instance reports the same instant for the same price.
    asOf: new Date(tick * options.tickMs).toISOString(),
  });
  return {
    tickMs: options.tickMs,
    instruments: () => options.instruments,
    has: (symbol) => bySymbol.has(symbol),
    tickAt: (nowMs) => tickAt(nowMs, options.tickMs),
    price(symbol, nowMs) {
      const instrument = bySymbol.get(symbol);
      return instrument ? quote(instrument, tickAt(nowMs, options.tickMs)) : undefined;
    },
    prices(nowMs) {
      const tick = tickAt(nowMs, options.tickMs);
      return options.instruments.map((i) => quote(i, tick));
    },
  };
}
