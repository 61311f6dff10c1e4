/**
 * Route handlers: input is already validated against the contract. Placing and cancelling only touch the
 * orders database (a new order's row in the reserve queue; a cancel's event in the outbox); the slow work happens in
 * the saga, driven by that queue (reserve-worker.ts) and by events.
 */
import { createHash, randomUUID } from 'node:crypto';
import { outgoingTraceparent, problems, ProblemError, wakeAfterCommit, type Db, type Handlers, type Queryable, type ServiceContext, type Contract } from '@simplebank/chassis';
import { formatMoney, parseMoney } from '@simplebank/money';
import type { z } from 'zod';
import { ordersContract, type Order as OrderDto } from './contract.ts';
import { findByIdempotencyKey, findOrder, historyOf, insertOrder, listOrders, lockOrder, logStep, RESERVE_CHANNEL, saveOrder, traceIdOf } from './data.ts';
import { isOrderError, Order, type HistoryEntry } from './domain/order.ts';
import type { OrderMetrics } from './metrics.ts';

type PlaceBody = z.infer<typeof ordersContract.routes.placeOrder.body>;

export function toDto(order: Order, history: readonly HistoryEntry[]): OrderDto {
  const s = order.state;
  return {
    id: s.id,
    customerId: s.customerId,
    accountId: s.accountId,
    symbol: s.symbol,
    side: s.side,
    quantity: s.quantity,
    type: s.type,
    limitPrice: s.limitPrice === null ? null : formatMoney(s.limitPrice),
    status: s.status,
    reason: s.reason,
    filledQuantity: s.filledQuantity,
    averagePrice: s.averagePrice === null ? null : formatMoney(s.averagePrice),
    fee: s.fee === null ? null : formatMoney(s.fee),
    createdAt: s.createdAt.toISOString(),
    updatedAt: s.updatedAt.toISOString(),
    history: history.map((h) => ({ status: h.status, at: h.at.toISOString(), ...(h.reason !== undefined ? { reason: h.reason } : {}) })),
  };
}

async function withHistory(q: Queryable, order: Order): Promise<OrderDto> {
  const history = await historyOf(q, [order.id]);
  return toDto(order, history.get(order.id) ?? []);
}

/**
 * What an idempotency key is bound to: the request's meaning, not its bytes ("10.5" and "10.50" are the same
 * limit price), so an honest retry matches and a different order under the same key does not.
 */
export function requestFingerprint(body: PlaceBody): string {
  const canonical = [body.customerId, body.accountId, body.symbol, body.side, body.quantity, body.type, body.limitPrice === undefined ? null : parseMoney(body.limitPrice).toString()];
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}

/** Orders outside the caller's scope look exactly like orders that don't exist. */
function visible(order: Order | undefined, customerId: string | undefined): order is Order {
  return order !== undefined && (customerId === undefined || order.state.customerId === customerId);
}

export function routes(ctx: Pick<ServiceContext<unknown, Record<string, Contract>>, 'db' | 'publish'>, metrics: OrderMetrics): Handlers<typeof ordersContract> {
  const db: Db = ctx.db;
  const ev = ordersContract.events;

  return {
    async placeOrder({ body, headers }) {
      const key = headers['idempotency-key'];
      const fingerprint = requestFingerprint(body);
      const result = await db.tx(async (tx) => {
        const order = Order.submit(
          {
            id: randomUUID(),
            customerId: body.customerId,
            accountId: body.accountId,
            symbol: body.symbol,
            side: body.side,
            quantity: body.quantity,
            type: body.type,
            limitPrice: body.limitPrice === undefined ? null : parseMoney(body.limitPrice),
          },
          new Date(),
        );
        // The order keeps its trace: the saga's every step, in every service, is in that trace. Queued for the saga's
        // first step in the same statement: the saga starts if and only if the order exists.
        if (await insertOrder(tx, order, key, fingerprint, outgoingTraceparent(), { idempotencyKey: key })) {
          metrics.transitions(tx, order);
          wakeAfterCommit(tx, RESERVE_CHANNEL);
          return { order, created: true };
        }
        const existing = await findByIdempotencyKey(tx, body.customerId, key);
        if (!existing) throw new Error('idempotency conflict without an existing order');
        if (existing.requestHash !== fingerprint) {
          throw problems.conflict('idempotency_key_reused', 'this Idempotency-Key was already used for a different order');
        }
        return { order: existing.order, created: false };
      });
      // A new order's history is the one entry just written; a repeat answers with the order as it is now.
      const dto = result.created ? toDto(result.order, result.order.changes) : await withHistory(db, result.order);
      return { status: 202, body: dto, headers: { location: `/orders/${dto.id}` } };
    },

    async getOrder({ params, query }) {
      const order = await findOrder(db, params.id);
      if (!visible(order, query.customerId)) throw problems.notFound('order');
      return { status: 200, body: await withHistory(db, order) };
    },

    async listOrders({ query }) {
      const orders = await listOrders(db, { customerId: query.customerId, limit: query.limit, ...(query.accountId ? { accountId: query.accountId } : {}) });
      const history = await historyOf(db, orders.map((o) => o.id));
      return { status: 200, body: orders.map((o) => toDto(o, history.get(o.id) ?? [])) };
    },

    async cancelOrder({ params, query }) {
      const order = await db.tx(async (tx) => {
        const order = await lockOrder(tx, params.id);
        if (!visible(order, query.customerId)) throw problems.notFound('order');
        const now = new Date();
        const s = order.state;
        const ref = { orderId: order.id, accountId: s.accountId };
        try {
          if (order.status === 'pending') {
            // Nothing is held yet; if the reserve step is mid-flight it sees `cancelled` and releases its hold.
            order.cancel(now);
            await saveOrder(tx, order);
            metrics.transitions(tx, order);
            await logStep(tx, order.id, 'cancel', 'ok', { by: 'customer' });
            await ctx.publish(tx, ev.OrderCancelled, { subject: order.id, correlationId: order.id, data: { ...ref, customerId: s.customerId } });
          } else if (order.requestCancel(now)) {
            // The exchange may have it: only the market can say whether it was cancelled or filled first.
            await saveOrder(tx, order);
            await logStep(tx, order.id, 'cancel_request', 'ok', { by: 'customer' });
            await ctx.publish(tx, ev.OrderCancelRequested, { subject: order.id, correlationId: order.id, data: ref });
          }
        } catch (err) {
          if (isOrderError(err) && err.code === 'order_final') throw new ProblemError(409, 'order_final', `order is already ${order.status}`, { status: order.status });
          throw err;
        }
        return order;
      });
      return { status: 202, body: await withHistory(db, order) };
    },

    async orderTrace({ params }) {
      const traceId = await traceIdOf(db, params.id);
      if (traceId === undefined) throw problems.notFound('order');
      return { status: 200, body: { orderId: params.id, traceId } };
    },
  };
}
