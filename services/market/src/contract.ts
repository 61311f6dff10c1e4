import { z } from 'zod';
import { defineContract, event, route } from '@simplebank/chassis';
import { positiveAmountString, quantity } from '@simplebank/money';

export const ExchangeOrderStatus = z.enum(['open', 'filled', 'expired', 'rejected', 'cancelled']);

export const ExchangeOrder = z.object({
  orderId: z.uuid(),
  symbol: z.string(),
  side: z.enum(['buy', 'sell']),
  quantity: z.number().int(),
  type: z.enum(['market', 'limit']),
  limitPrice: z.string().nullable(),
  status: ExchangeOrderStatus,
  fillPrice: z.string().nullable(),
  expiresAt: z.iso.datetime().nullable(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});

const ref = { orderId: z.uuid(), accountId: z.uuid() };

export const marketContract = defineContract({
  service: 'market',
  routes: {
    getExchangeOrder: route({ method: 'GET', path: '/exchange-orders/:orderId', params: z.object({ orderId: z.uuid() }), responses: { 200: ExchangeOrder } }),
    exchangeStatus: route({
      method: 'GET',
      path: '/exchange',
      summary: 'Simulated exchange: open or closed, its clock, open orders',
      responses: { 200: z.object({ open: z.boolean(), exchangeTime: z.iso.datetime(), openOrders: z.number().int() }) },
    }),
  },
  events: {
    OrderPlaced: event('market.OrderPlaced.v1', z.object({ ...ref, expiresAt: z.iso.datetime().nullable() })),
    TradeExecuted: event('market.TradeExecuted.v1', z.object({ ...ref, price: positiveAmountString, quantity, executedAt: z.iso.datetime() })),
    OrderExpired: event('market.OrderExpired.v1', z.object(ref)),
    OrderRejected: event('market.OrderRejected.v1', z.object({ ...ref, reason: z.string() })),
    OrderCancelled: event('market.OrderCancelled.v1', z.object(ref)),
  },
});
