/**
 * Subscriptions: the events that drive the place-order saga. The chassis runs each handler in a transaction
 * with the inbox record, so a redelivered event is skipped and a failed handler is retried with backoff,
 * then dead-lettered (visible and replayable by an operator).
 */
import type { Subscription } from '@simplebank/chassis';
import { marketContract } from '@simplebank/market/contract';
import { ordersContract } from './contract.ts';
import type { Saga } from './saga.ts';

/** Compensations and settlements must eventually succeed: retry for long (about 17 minutes at 250 ms), then dead-letter. */
const MARKET_MAX_ATTEMPTS = 13;

/**
 * Handlers running at once per subscription. Each holds a pooled connection for its transaction, calls to other
 * services included, so the two subscriptions together take at most half the pool: the routes (placing an order
 * must never wait for the saga) and the outbox relay keep the other half. 2 each with the default pool of 10, 10
 * each with the 40 the bank runner gives orders.
 */
export const sagaConcurrency = (poolSize: number): number => Math.max(1, Math.floor(poolSize / 4));

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
        const data = ordersContract.events.OrderSubmitted.data.parse(event.data);
        await saga.reserve(data.orderId, tx, attempt);
      },
      maxAttempts: retry.reserveAttempts,
      backoffMs: retry.backoffMs,
      concurrency,
      // Every step starts by reading the order: the inbox record goes with that query.
      inboxWithFirstQuery: true,
    },
    {
      name: 'orders.saga-market',
      events: [market.OrderPlaced, market.TradeExecuted, market.OrderExpired, market.OrderRejected, market.OrderCancelled],
      async handle(event, tx) {
        // The chassis has already validated `data` against the event's schema; parse again only to get its type.
        switch (event.type) {
          case market.OrderPlaced.type:
            return saga.placed(market.OrderPlaced.data.parse(event.data), tx);
          case market.TradeExecuted.type:
            return saga.executed(market.TradeExecuted.data.parse(event.data), tx, event);
          case market.OrderExpired.type:
            return saga.ended('expired', market.OrderExpired.data.parse(event.data), tx);
          case market.OrderRejected.type:
            return saga.ended('rejected', market.OrderRejected.data.parse(event.data), tx);
          case market.OrderCancelled.type:
            return saga.ended('cancelled', market.OrderCancelled.data.parse(event.data), tx);
        }
      },
      maxAttempts: MARKET_MAX_ATTEMPTS,
      backoffMs: retry.backoffMs,
      concurrency,
      inboxWithFirstQuery: true,
    },
  ];
}
