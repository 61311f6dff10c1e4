import { performance } from 'node:perf_hooks';
import type { Db } from '../data/db.ts';
import type { BatchObserver } from '../data/group-commit.ts';
import type { Bus, Delivery, EventHandler } from '../messaging/bus.ts';
import type { EventEnvelope } from '../messaging/envelope.ts';
import type { InboxOutcome } from '../messaging/inbox.ts';
import { LATENCY_BUCKETS, type ServiceMetrics } from './registry.ts';
import { throttledWarn, type WarnLog } from '../protection/warn-throttle.ts';
import { queueGauges, type QueueSample } from './queue-gauges.ts';
import { sampler } from './sampler.ts';
import type { HistogramSeries } from './series.ts';

export interface MessagingMetricsOptions {
  /** The service's database: its outbox is measured at scrape time. */
  db: Db;
  /** The bus: consumer backlog and dead letters at scrape time, when the adapter reports them. */
  bus: Bus;
  /** Where a failed or timed-out scrape-time read is reported (at most once a minute each); the gauges keep their last values. */
  log?: WarnLog;
}

export interface MessagingMetrics {
  /** `OutboxRelayOptions.onPublished`: counts what the relay published. */
  published(count: number): void;
  /**
   * Wraps a subscription's handler: `bus_handler_duration_seconds{subscription, event_type, outcome}` (outcome
   * `duplicate` when the inbox turned the delivery away) and `bus_redeliveries_total{subscription}`. `types` are the
   * subscription's event types; anything else delivered to it is labelled `other`, so labels stay bounded.
   */
  handler(subscription: string, types: readonly string[], handle: (event: EventEnvelope, delivery: Delivery) => Promise<InboxOutcome | void>): EventHandler;
  /**
   * A group-commit subscription's batches (Subscription.batch): `bus_batch_size{subscription}`, deliveries per
   * transaction, and `bus_batches_redone_total{subscription}`, batches rolled back and handled again one by one.
   */
  batches(subscription: string): BatchObserver;
}

/** Deliveries per transaction: 1 (idle) up to the largest batch a subscription allows. */
const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128];

/**
 * One query for both outbox gauges: rows not yet published and the age of the oldest. The outbox holds only those
 * (the relay deletes what it has published), so the cost follows the backlog.
 */
const OUTBOX_SQL = `SELECT count(*)::int AS size, COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS lag
  FROM outbox`;

type HandlerLabels = 'subscription' | 'event_type' | 'outcome';
type HandlerOutcome = 'ok' | 'error' | 'duplicate';

/**
 * Messaging metrics of a service with an outbox and subscriptions. What costs a query (outbox backlog and lag,
 * consumer backlog, dead letters) is read at scrape time, once per scrape, with a timeout; the relay and the
 * handlers only bump resolved series.
 */
export function messagingMetrics(metrics: ServiceMetrics, options: MessagingMetricsOptions): MessagingMetrics {
  const { db, bus } = options;
  const warnBus = throttledWarn(options.log, 60_000);

  queueGauges(metrics, {
    read: () => db.one<QueueSample>(OUTBOX_SQL),
    size: { name: 'outbox_backlog_events', help: 'events written to the outbox and not yet published' },
    lag: { name: 'outbox_lag_seconds', help: 'age of the oldest unpublished outbox event (0 when none)' },
    what: 'the outbox backlog',
    ...(options.log ? { log: options.log } : {}),
  });
  const published = metrics.counter({ name: 'outbox_published_total', help: 'events the outbox relay published' }).series({});

  const stats = bus.subscriptionStats?.bind(bus);
  if (stats) {
    const subscriptions = sampler(stats, { onError: (err) => warnBus({ err }, 'could not read subscription backlogs from the bus for metrics') });
    metrics.gauge<'subscription'>({
      name: 'bus_consumer_lag_events',
      help: 'events not yet handled by a subscription (waiting, waiting for a retry, or being handled)',
      labelNames: ['subscription'],
      async collect() {
        for (const s of (await subscriptions()) ?? []) this.set({ subscription: s.subscription }, s.pending);
      },
    });
    metrics.gauge<'subscription'>({
      name: 'bus_dead_letter_events',
      help: "events in a subscription's dead-letter queue",
      labelNames: ['subscription'],
      async collect() {
        for (const s of (await subscriptions()) ?? []) this.set({ subscription: s.subscription }, s.deadLetters);
      },
    });
  }

  const duration = metrics.histogram<HandlerLabels>({
    name: 'bus_handler_duration_seconds',
    help: 'event deliveries handled, by subscription, event type and outcome (ok, error, duplicate)',
    labelNames: ['subscription', 'event_type', 'outcome'],
    buckets: LATENCY_BUCKETS,
  });
  const redeliveries = metrics.counter<'subscription'>({
    name: 'bus_redeliveries_total',
    help: 'deliveries after the first of an event, by subscription',
    labelNames: ['subscription'],
  });

  const batchSize = metrics.histogram<'subscription'>({
    name: 'bus_batch_size',
    help: 'deliveries handled per transaction by a group-commit subscription (1: a delivery alone)',
    labelNames: ['subscription'],
    buckets: BATCH_SIZE_BUCKETS,
  });
  const batchesRedone = metrics.counter<'subscription'>({
    name: 'bus_batches_redone_total',
    help: 'batches of a group-commit subscription rolled back (one delivery failed) and handled again one by one',
    labelNames: ['subscription'],
  });

  return {
    published: (count) => published.inc(count),

    batches(subscription) {
      const size = batchSize.series({ subscription });
      const redone = batchesRedone.series({ subscription });
      return { started: (n) => size.observe(n), redone: () => redone.inc() };
    },

    handler(subscription, types, handle) {
      const redelivered = redeliveries.series({ subscription });
      const known = new Set(types);
      const byType = new Map<string, Record<HandlerOutcome, HistogramSeries | undefined>>();
      const observe = (type: string, outcome: HandlerOutcome, started: number) => {
        const eventType = known.has(type) ? type : 'other';
        let slots = byType.get(eventType);
        if (!slots) byType.set(eventType, (slots = { ok: undefined, error: undefined, duplicate: undefined }));
        (slots[outcome] ??= duration.series({ subscription, event_type: eventType, outcome })).observe((performance.now() - started) / 1000);
      };
      return (event, delivery) => {
        const started = performance.now();
        if (delivery.attempt > 1) redelivered.inc();
        return handle(event, delivery).then(
          (result) => observe(event.type, result === 'duplicate' ? 'duplicate' : 'ok', started),
          (err: unknown) => {
            observe(event.type, 'error', started);
            throw err;
          },
        );
      };
    },
  };
}
