import { problems, type Db, type Handlers } from '@simplebank/chassis';
import type { Exchange } from './config.ts';
import type { marketContract } from './contract.ts';
import { countOpen, findOrder, toExchangeOrder } from './data.ts';

export function routes(db: Db, exchange: Exchange): Handlers<typeof marketContract> {
  return {
    getExchangeOrder: async ({ params }) => {
      const row = await findOrder(db, params.orderId);
      if (!row) throw problems.notFound('exchange order');
      return { status: 200, body: toExchangeOrder(row) };
    },
    exchangeStatus: async () => {
      const now = Date.now();
      return { status: 200, body: { open: exchange.isOpen(now), exchangeTime: new Date(now).toISOString(), openOrders: await countOpen(db) } };
    },
  };
}
