import { outgoingTraceparent, type Contract, type ServiceContext, type Subscription } from '@simplebank/chassis';
import { parseMoney } from '@simplebank/money';
import { ordersContract } from '@simplebank/orders/contract';
import type { Exchange } from './config.ts';
import { marketContract } from './contract.ts';
import { addOrder, finalize, insertCancelRequest, intakeSnapshot, lockOrder, lockOrderKey } from './data.ts';

type Ctx = Pick<ServiceContext<unknown, Record<string, Contract>>, 'publish' | 'log'>;

const { OrderPlaced, OrderRejected, OrderCancelled } = marketContract.events;

/**
 * Under load, orders arrive in bursts: the deliveries that come while the intake's transactions are busy are
 * handled together, one after another in one transaction (chassis: Subscription.batch), so a burst costs one BEGIN
 * and one COMMIT. If one of them fails, each delivery of the batch is handled again alone.
 */
const GROUP_COMMIT = { concurrency: 32, batch: { maxSize: 16, transactions: 2 } };

/**
 * The exchange's intake and cancellations. Both run in the chassis' inbox transaction, so a redelivered event
 * is skipped; they also serialise per order (lockOrderKey), since a cancel can overtake its order.
 * Execution is not done here but by the matcher (matcher.ts), so a slow price feed never holds up intake.
 */
export function exchangeSubscriptions(ctx: Ctx, exchange: Exchange): Subscription[] {
  const intake: Subscription<typeof ordersContract.events.OrderAccepted> = {
    name: 'market.exchange-intake',
    events: [ordersContract.events.OrderAccepted],
    // Its first step is a query (intakeSnapshot): the inbox record goes with it.
    inboxWithFirstQuery: true,
    ...GROUP_COMMIT,
    async handle(event, tx) {
      const o = event.data;
      const causation = { correlationId: event.correlationId, causationId: event.id };
      const ref = { orderId: o.orderId, accountId: o.accountId };
      // One round trip (with the BEGIN and the inbox record): the order key's lock, then the order if it is here
      // already, then a cancel request that overtook it (consumed, unless the order is here).
      const { existing, cancelRequested } = await intakeSnapshot(tx, o.orderId);
      // The same order accepted twice (a retry upstream, under a new event id) is one exchange order.
      if (existing) {
        ctx.log.info({ orderId: o.orderId }, 'duplicate OrderAccepted ignored');
        return;
      }
      const now = Date.now();
      const open = exchange.isOpen(now);
      const expiresAt = exchange.expiresAt(o.type, now);
      const status = cancelRequested ? 'cancelled' : open ? 'open' : 'rejected';
      const reason = status === 'rejected' ? 'market closed' : null;
      await addOrder(tx, {
        orderId: o.orderId,
        accountId: o.accountId,
        symbol: o.symbol,
        side: o.side,
        quantity: o.quantity,
        type: o.type,
        limitPrice: o.limitPrice === null ? null : parseMoney(o.limitPrice),
        status,
        reason,
        executeAfter: new Date(exchange.executeAfter(now)),
        expiresAt: expiresAt === null ? null : new Date(expiresAt),
        correlationId: event.correlationId,
        // Kept with the order so the matcher's fill, expiry or rejection continues this trace.
        traceparent: outgoingTraceparent(),
      });
      if (status === 'cancelled') {
        await ctx.publish(tx, OrderCancelled, { subject: o.orderId, data: ref, ...causation });
      } else if (status === 'rejected') {
        await ctx.publish(tx, OrderRejected, { subject: o.orderId, data: { ...ref, reason: reason! }, ...causation });
      } else {
        await ctx.publish(tx, OrderPlaced, {
          subject: o.orderId,
          data: { ...ref, expiresAt: expiresAt === null ? null : new Date(expiresAt).toISOString() },
          ...causation,
        });
      }
      ctx.log.info({ orderId: o.orderId, symbol: o.symbol, side: o.side, type: o.type, status }, 'order received by the exchange');
    },
  };

  const cancellations: Subscription<typeof ordersContract.events.OrderCancelRequested> = {
    name: 'market.cancellations',
    events: [ordersContract.events.OrderCancelRequested],
    inboxWithFirstQuery: true,
    async handle(event, tx) {
      const { orderId, accountId } = event.data;
      await lockOrderKey(tx, orderId);
      // FOR UPDATE waits for a matcher holding the row: we then see its fill and leave the order alone.
      const row = await lockOrder(tx, orderId);
      if (!row) {
        await insertCancelRequest(tx, orderId, accountId);
        ctx.log.info({ orderId }, 'cancel arrived before its order; kept for when it arrives');
        return;
      }
      // Already final: orders learns the outcome from the event that made it final.
      if (row.status !== 'open') return;
      await finalize(tx, orderId, { status: 'cancelled' });
      await ctx.publish(tx, OrderCancelled, {
        subject: orderId,
        data: { orderId, accountId: row.account_id },
        correlationId: event.correlationId,
        causationId: event.id,
      });
      ctx.log.info({ orderId }, 'order cancelled');
    },
  };

  return [intake, cancellations];
}
