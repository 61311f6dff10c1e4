/**
 * Subscriptions: the events that drive the place-order saga. The chassis runs each handler in a transaction
 * with the inbox record, so a redelivered event is skipped and a failed handler is retried with backoff,
 * then dead-lettered (visible and replayable by an operator).
 */
import type { EventData, EventDef, Subscription } from '@simplebank/chassis';
import { marketContract } from '@simplebank/market/contract';
import { ordersContract } from './contract.ts';
import type { Saga } from './saga.ts';

type DataOf<E extends EventDef> = EventData<E>;

/** Compensations and settlements must eventually succeed: retry for long (about 17 minutes at 250 ms), then dead-letter. */
const MARKET_MAX_ATTEMPTS = 13;

/**
 * Handlers running at once per subscription. Under load a step's time is mostly waiting (for accounts and fees,
 * for the disk at commit), so throughput is concurrency over latency: the more steps in flight, the more orders a
 * second. A handler holds a pooled connection from its first query to its commit (the reserve step calls accounts
 * and fees in between; the fill step charges and settles under the order's row lock), so each subscription gets at
 * most half the pool, less one: the routes (placing an order must never wait for the saga), the relay and reads
 * keep the rest. 4 each with the default pool of 10 (the bank runner gives orders a larger one).
 */
export const sagaConcurrency = (poolSize: number): number => Math.max(1, Math.floor(poolSize / 2) - 1);

export interface RetryPolicy {
  /** Deliveries of OrderSubmitted before the reserve step gives up and rejects the order. */
  reserveAttempts: number;
  /** First redelivery delay; doubles each attempt. */
  backoffMs: number;
}

export function subscriptions(saga: Saga, retry: RetryPolicy, concurrency: number): Subscription[] {
  const market = marketContract.events;
  return [
    {
      name: 'orders.saga-reserve',
      events: [ordersContract.events.OrderSubmitted],
      async handle(event, tx, attempt) {
        // The chassis has validated `data` against the event's schema already.
        await saga.reserve((event.data as DataOf<typeof ordersContract.events.OrderSubmitted>).orderId, tx, attempt);
      },
      maxAttempts: retry.reserveAttempts,
      backoffMs: retry.backoffMs,
      concurrency,
      // The step's first query reads the order: the inbox record goes with it, so a duplicate stops there.
      inboxWithFirstQuery: true,
    },
    {
      name: 'orders.saga-market',
      events: [market.OrderPlaced, market.TradeExecuted, market.OrderExpired, market.OrderRejected, market.OrderCancelled],
      async handle(event, tx) {
        // The chassis has validated `data` against the event's schema already: only its type is needed here.
        switch (event.type) {
          case market.OrderPlaced.type:
            return saga.placed(event.data as DataOf<typeof market.OrderPlaced>, tx);
          case market.TradeExecuted.type:
            return saga.executed(event.data as DataOf<typeof market.TradeExecuted>, tx, event);
          case market.OrderExpired.type:
            return saga.ended('expired', event.data as DataOf<typeof market.OrderExpired>, tx);
          case market.OrderRejected.type:
            return saga.ended('rejected', event.data as DataOf<typeof market.OrderRejected>, tx);
          case market.OrderCancelled.type:
            return saga.ended('cancelled', event.data as DataOf<typeof market.OrderCancelled>, tx);
        }
      },
      maxAttempts: MARKET_MAX_ATTEMPTS,
      backoffMs: retry.backoffMs,
      concurrency,
      inboxWithFirstQuery: true,
    },
  ];
}
