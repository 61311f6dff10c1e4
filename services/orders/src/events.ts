/**
 * Subscriptions: the market's events that drive the place-order saga on (its first step is queued in orders' own
 * database: reserve-worker.ts). The chassis runs each handler in a transaction with the inbox record, so a
 * redelivered event is skipped and a failed handler is retried with backoff, then dead-lettered (visible and
 * replayable by an operator).
 */
import type { Subscription } from '@simplebank/chassis';
import { marketContract } from '@simplebank/market/contract';
import type { Saga } from './saga.ts';

/** Compensations and settlements must eventually succeed: retry for long (about 17 minutes at 250 ms), then dead-letter. */
const MARKET_MAX_ATTEMPTS = 13;

/**
 * Transactions running at once for each of the saga's two sources of steps: the reserve queue (reserve-worker.ts)
 * and the market subscription. A step holds a pooled connection from its first query to its commit (the reserve
 * step calls accounts and fees in between; the fill step charges and settles under the order's row lock), so each
 * gets at most half the pool, less one: the routes (placing an order must never wait for the saga), the relay and
 * reads keep the rest. And at most 2: under load the steps are grouped (group
 * commit, below), and a few transactions of many steps each cost the database far less than many of one step.
 */
export const sagaTransactions = (poolSize: number): number => Math.min(2, Math.max(1, Math.floor(poolSize / 2) - 1));

/**
 * Steps per transaction, at most. Under load the steps that come due while the transactions are busy are taken
 * together in the next one (chassis: Subscription.handleBatch; the reserve worker's rounds): one BEGIN, one inbox
 * statement or claim, one query for the orders, the calls to other services side by side, one COMMIT. Enough
 * deliveries are claimed from the bus (concurrency) to fill every transaction.
 */
export const SAGA_BATCH = 32;

export interface SagaSubscriptionOptions {
  /** First redelivery delay of a failed step; doubles each attempt. */
  backoffMs: number;
  /** Transactions at once (sagaTransactions). */
  transactions: number;
  /** Least time between two transactions while no full batch waits (chassis BatchLimits.gatherMs). */
  gatherMs: number;
}

export function subscriptions(saga: Saga, { backoffMs, transactions, gatherMs }: SagaSubscriptionOptions): Subscription[] {
  const market = marketContract.events;
  const grouping = { concurrency: transactions * SAGA_BATCH, batch: { maxSize: SAGA_BATCH, transactions, gatherMs } };
  return [
    {
      name: 'orders.saga-market',
      events: [market.OrderPlaced, market.TradeExecuted, market.OrderExpired, market.OrderRejected, market.OrderCancelled],
      // The chassis has validated `data` against the event's schema already: the saga needs only its type.
      handle: (event, tx) => saga.market(event, tx),
      handleBatch: (items, tx) => saga.marketBatch(items, tx),
      maxAttempts: MARKET_MAX_ATTEMPTS,
      backoffMs,
      ...grouping,
      inboxWithFirstQuery: true,
    },
  ];
}
