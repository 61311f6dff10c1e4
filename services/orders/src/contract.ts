import { z } from 'zod';
import { defineContract, event, route } from '@simplebank/chassis';
import { amountString, positiveAmountString, quantity } from '@simplebank/money';

export const Ticker = z.string().regex(/^[A-Z][A-Z0-9.]{0,9}$/, 'must be an upper-case ticker symbol, e.g. "AAPL"');
export const Side = z.enum(['buy', 'sell']);
export const OrderType = z.enum(['market', 'limit']);
export const OrderStatus = z.enum(['pending', 'accepted', 'placed', 'filled', 'rejected', 'expired', 'cancelled']);
export type OrderStatus = z.infer<typeof OrderStatus>;

export const OrderRequest = z
  .object({
    accountId: z.uuid(),
    symbol: Ticker,
    side: Side,
    quantity,
    type: OrderType,
    limitPrice: positiveAmountString.optional(),
  })
  .refine((o) => (o.type === 'limit') === (o.limitPrice !== undefined), {
    message: 'limitPrice is required for limit orders and not allowed for market orders',
    path: ['limitPrice'],
  });

export const Order = z.object({
  id: z.uuid(),
  customerId: z.uuid(),
  accountId: z.uuid(),
  symbol: Ticker,
  side: Side,
  quantity: z.number().int(),
  type: OrderType,
  limitPrice: amountString.nullable(),
  status: OrderStatus,
  reason: z.string().nullable(),
  filledQuantity: z.number().int(),
  averagePrice: amountString.nullable(),
  fee: amountString.nullable(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  history: z.array(z.object({ status: OrderStatus, at: z.iso.datetime(), reason: z.string().optional() })),
});
export type Order = z.infer<typeof Order>;

const scoped = z.object({ customerId: z.uuid().optional() });

const orderRef = { orderId: z.uuid(), accountId: z.uuid() };

export const ordersContract = defineContract({
  service: 'orders',
  routes: {
    placeOrder: route({
      method: 'POST',
      path: '/orders',
      summary: 'Place an order (202, pending); a repeated Idempotency-Key returns the same order',
      headers: z.object({ 'idempotency-key': z.string().min(1).max(200) }),
      body: z.intersection(OrderRequest, z.object({ customerId: z.uuid() })),
      responses: { 202: Order },
    }),
    getOrder: route({ method: 'GET', path: '/orders/:id', params: z.object({ id: z.uuid() }), query: scoped, responses: { 200: Order } }),
    listOrders: route({
      method: 'GET',
      path: '/orders',
      query: z.object({ customerId: z.uuid(), accountId: z.uuid().optional(), limit: z.coerce.number().int().min(1).max(500).default(100) }),
      responses: { 200: z.array(Order) },
    }),
    cancelOrder: route({
      method: 'DELETE',
      path: '/orders/:id',
      summary: 'Ask to cancel an order that is not final (202); 409 order_final when it is',
      params: z.object({ id: z.uuid() }),
      query: scoped,
      responses: { 202: Order },
    }),
    orderTrace: route({
      method: 'GET',
      path: '/admin/orders/:id/trace',
      summary: 'The trace id of the request that placed the order (null if none was recorded): `simplebank trace` starts here',
      auth: 'service',
      params: z.object({ id: z.uuid() }),
      responses: { 200: z.object({ orderId: z.uuid(), traceId: z.string().nullable() }) },
    }),
  },
  events: {
    /** Funds/shares are reserved; market takes it to the exchange. */
    OrderAccepted: event(
      'orders.OrderAccepted.v1',
      z.object({ ...orderRef, customerId: z.uuid(), symbol: Ticker, side: Side, quantity, type: OrderType, limitPrice: positiveAmountString.nullable() }),
    ),
    OrderCancelRequested: event('orders.OrderCancelRequested.v1', z.object(orderRef)),
    OrderFilled: event(
      'orders.OrderFilled.v1',
      z.object({ ...orderRef, customerId: z.uuid(), symbol: Ticker, side: Side, quantity, averagePrice: amountString, fee: amountString }),
    ),
    OrderRejected: event('orders.OrderRejected.v1', z.object({ ...orderRef, customerId: z.uuid(), reason: z.string() })),
    OrderExpired: event('orders.OrderExpired.v1', z.object({ ...orderRef, customerId: z.uuid() })),
    OrderCancelled: event('orders.OrderCancelled.v1', z.object({ ...orderRef, customerId: z.uuid() })),
  },
});
