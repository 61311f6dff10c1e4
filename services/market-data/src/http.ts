import { ProblemError, type Handlers } from '@simplebank/chassis';
import type { marketDataContract } from './contract.ts';
import type { PriceFeed } from './feed.ts';

export function routes(feed: PriceFeed): Handlers<typeof marketDataContract> {
  return {
    listInstruments: async () => ({
      status: 200,
      body: feed.instruments().map((i) => ({ symbol: i.symbol, name: i.name, currency: i.currency })),
    }),
    listPrices: async () => ({ status: 200, body: feed.prices(Date.now()) }),
    getPrice: async ({ params }) => {
      const price = feed.price(params.symbol, Date.now());
      if (!price) throw new ProblemError(404, 'unknown_symbol', `no instrument ${params.symbol}`);
      return { status: 200, body: price };
    },
  };
}
