import type { EventEnvelope } from './envelope.ts';

/** What a subscription's handler receives besides the event: delivery facts for logs and metrics. */
export interface Delivery {
  /** 1 on first delivery, 2 on the first redelivery, and so on. */
  attempt: number;
}

/** Resolves once the event is handled (the bus then acknowledges it); its value, if any, is for wrappers (metrics). */
export type EventHandler = (event: EventEnvelope, delivery: Delivery) => Promise<unknown>;

export interface SubscriptionOptions {
  /**
   * Durable consumer name, shared by all instances of a service so each event is handled by one of them:
   * `<service>.<purpose>`, e.g. `accounts.open-on-registration`.
   */
  name: string;
  /** Event types to receive, e.g. `['customers.CustomerRegistered.v1']`. */
  types: string[];
  handler: EventHandler;
  /** Deliveries before the event is dead-lettered. Default 5. */
  maxAttempts?: number;
  /** First retry delay in ms; doubles each attempt. Default 200. */
  backoffMs?: number;
  /** Handlers run concurrently per instance. Default 8. */
  concurrency?: number;
  /**
   * Seconds a delivery stays claimed by the instance handling it without a sign of life. While the handler runs,
   * the instance renews the claim every third of this, so a slow handler is never delivered twice; when the
   * instance dies (SIGKILL, lost connection) the claim lapses and the event is redelivered to another instance
   * as its next attempt (a crashed attempt counts towards maxAttempts like a failed one). So this bounds crash
   * recovery, not how long a handler may take. Whole seconds, at least 1. Default DEFAULT_LEASE_SECONDS.
   */
  leaseSeconds?: number;
}

/** 15 s: recovery well inside a minute, and a renewal every 5 s tolerates a stalled event loop of ~10 s. */
export const DEFAULT_LEASE_SECONDS = 15;

/** The subscription's lease, validated: both engines take whole seconds. */
export function leaseSecondsOf(sub: Pick<SubscriptionOptions, 'name' | 'leaseSeconds'>): number {
  const lease = sub.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
  if (!Number.isInteger(lease) || lease < 1 || lease > 3600) {
    throw new Error(`subscription ${sub.name}: leaseSeconds must be a whole number of seconds from 1 to 3600, got ${lease}`);
  }
  return lease;
}

export interface SubscriptionStats {
  subscription: string;
  /** Events not yet done for this subscription: waiting, waiting for a retry, or being handled. */
  pending: number;
  /** Events in its dead-letter queue. */
  deadLetters: number;
}

/** An event set aside after its last attempt, as `deadLetters()` lists it; `id` is what `replay()` takes. */
export interface DeadLetter {
  /** pg-boss: the dead-letter job's uuid; NATS: the message's sequence number in the DLQ stream. */
  id: string;
  subscription: string;
  event: EventEnvelope;
  /** The last attempt's error message. */
  error: string;
  /** When it was dead-lettered (ISO 8601). */
  failedAt: string;
  /** Deliveries it had; undefined for NATS dead letters written before the bus recorded them. */
  attempts?: number;
}

/**
 * One interface, two engines: pg-boss (embedded default) and NATS JetStream. Delivery is at-least-once;
 * consumers make it effectively-once with the inbox (see inbox.ts).
 */
export interface Bus {
  readonly kind: 'pg-boss' | 'nats';
  start(): Promise<void>;
  /** Publish durably: resolves only once the bus has stored the event. */
  publish(event: EventEnvelope): Promise<void>;
  /**
   * Publish several events durably, in order, in far fewer round trips than one publish() each (the outbox relay
   * uses it). Resolves once all are stored. When it rejects, any of them may have been stored: publish them again
   * (the bus drops an event id it already holds). Ordering is as if published one by one, as long as it resolves.
   */
  publishBatch(events: EventEnvelope[]): Promise<void>;
  subscribe(options: SubscriptionOptions): Promise<void>;
  /** Events that exhausted their attempts for a subscription, oldest first, at most `limit` (default 100). */
  deadLetters(subscription: string, limit?: number): Promise<DeadLetter[]>;
  /**
   * Re-deliver a dead-lettered event to its subscription, attempts counting from 1 again; returns false if unknown.
   * A dead letter is replayed once: a second call for the same id returns false (NATS: or, racing the first, stores
   * no second copy), so a retried replay never delivers the event twice.
   */
  replay(subscription: string, deadLetterId: string): Promise<boolean>;
  /** Backlog and dead letters of the subscriptions made on this bus instance, for metrics (read at scrape time). */
  subscriptionStats?(): Promise<SubscriptionStats[]>;
  /** Throws when the bus is unreachable (readiness). */
  ping(): Promise<void>;
  /** Stop taking new deliveries, wait for in-flight handlers, then close connections. */
  close(): Promise<void>;
}
