import { z } from 'zod';
import { defineContract, route } from '@simplebank/chassis';
import { positiveAmountString } from '@simplebank/money';

export const Ticker = z.string().regex(/^[A-Z][A-Z0-9.]{0,9}$/, 'must be an upper-case ticker symbol, e.g. "AAPL"');
export const Instrument = z.object({ symbol: Ticker, name: z.string(), currency: z.literal('USD') });
export const Price = z.object({ symbol: Ticker, price: positiveAmountString, asOf: z.iso.datetime() });
export type Price = z.infer<typeof Price>;

export const marketDataContract = defineContract({
  service: 'market-data',
  routes: {
    listInstruments: route({ method: 'GET', path: '/instruments', responses: { 200: z.array(Instrument) } }),
    listPrices: route({ method: 'GET', path: '/prices', responses: { 200: z.array(Price) } }),
    getPrice: route({
      method: 'GET',
      path: '/prices/:symbol',
      summary: 'Latest price; 404 unknown_symbol',
      params: z.object({ symbol: Ticker }),
      responses: { 200: Price },
    }),
  },
  // The live price stream (`GET /prices/stream`, server-sent events) is not a JSON route; see service.ts.
});
