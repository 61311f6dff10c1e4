/**
 * The saga's business metrics (docs/observability.md, "Sagas and business"): orders entering each status, time
 * from acceptance to a final status, compensations run. Recorded once the transaction that made the change has
 * committed, so a rolled-back step (retried by the bus) is not counted twice.
 */
import { isTxClient, queueGauges, type Db, type Logger, type Queryable, type QueueSample, type ServiceMetrics } from '@simplebank/chassis';
import { isFinal, type Order, type OrderStatus } from './domain/order.ts';

const STATUSES: readonly OrderStatus[] = ['pending', 'accepted', 'placed', 'filled', 'rejected', 'expired', 'cancelled'];

export type CompensationReason = 'rejected' | 'expired' | 'cancelled' | 'failed';
const REASONS: readonly CompensationReason[] = ['rejected', 'expired', 'cancelled', 'failed'];

/** Seconds: a market order fills within a second, a limit order may wait until its time in force (a day at most). */
const COMPLETION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14_400, 86_400];

export interface OrderMetrics {
  /**
   * Call after saving a transition (`saveOrder`/`insertOrder`), not after a cancel request (no status change): once
   * `tx` commits, counts every status the order entered, and times a final one from the order's acceptance.
   */
  transitions(tx: Queryable, order: Order): void;
  /** A compensation (release, refund) ran in `tx`; counted once it commits. */
  compensated(tx: Queryable, reason: CompensationReason): void;
}

const afterCommit = (tx: Queryable, fn: () => void): void => (isTxClient(tx) ? tx.afterCommit(fn) : fn());

export function orderMetrics(metrics: ServiceMetrics): OrderMetrics {
  const transitions = metrics.counter<'status'>({ name: 'simplebank_orders_transitions_total', help: 'orders entering a status', labelNames: ['status'] });
  const completion = metrics.histogram<'status'>({
    name: 'simplebank_order_completion_seconds',
    help: 'time from an order being accepted to its final status, by final status',
    labelNames: ['status'],
    buckets: COMPLETION_BUCKETS,
  });
  const compensations = metrics.counter<'reason'>({ name: 'simplebank_saga_compensations_total', help: 'compensations run (hold released, fee refunded), by reason', labelNames: ['reason'] });
  // Every status and reason exported from the start (0), so rates and alerts have a series before the first order.
  const entered = new Map(STATUSES.map((s) => [s, transitions.series({ status: s })]));
  const compensated = new Map(REASONS.map((r) => [r, compensations.series({ reason: r })]));

  return {
    transitions(tx, order) {
      const changes = [...order.changes];
      // An order rejected before it was accepted (insufficient funds, unknown symbol) has no completion time.
      const acceptedAt = order.state.acceptedAt;
      afterCommit(tx, () => {
        for (const change of changes) {
          entered.get(change.status)?.inc();
          if (isFinal(change.status) && acceptedAt) completion.observe({ status: change.status }, Math.max(0, change.at.getTime() - acceptedAt.getTime()) / 1000);
        }
      });
    },
    compensated(tx, reason) {
      afterCommit(tx, () => compensated.get(reason)?.inc());
    },
  };
}

/** One query for both reserve-queue gauges; the queue holds only the orders still to be reserved. */
const RESERVE_QUEUE_SQL = `SELECT count(*)::int AS size,
    COALESCE(EXTRACT(EPOCH FROM now() - min(due_at) FILTER (WHERE due_at <= now())), 0)::float8 AS lag
  FROM reserve_queue`;

/**
 * The reserve queue at scrape time (reserve-worker.ts), as the chassis shows the outbox: the orders waiting for
 * their first step, and how long the oldest due one has waited. Registered by the worker, which owns the queue.
 */
export function reserveQueueMetrics(metrics: ServiceMetrics, db: Db, log: Logger): void {
  queueGauges(metrics, {
    read: () => db.one<QueueSample>(RESERVE_QUEUE_SQL),
    size: { name: 'simplebank_orders_reserve_queue_orders', help: 'orders waiting for the saga\'s reserve step (due, or waiting out a retry backoff)' },
    lag: { name: 'simplebank_orders_reserve_queue_lag_seconds', help: 'how long the oldest due reserve step has waited (0 when none)' },
    what: 'the reserve queue',
    log,
  });
}
