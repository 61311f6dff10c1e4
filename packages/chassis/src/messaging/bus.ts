import type { EventEnvelope } from './envelope.ts';

/** What a subscription's handler receives besides the event: delivery facts for logs and metrics. */
export interface Delivery {
  /** 1 on first delivery, 2 on the first redelivery, and so on. */
  attempt: number;
}

export type EventHandler = (event: EventEnvelope, delivery: Delivery) => Promise<void>;

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
}

export interface DeadLetter {
  id: string;
  subscription: string;
  event: EventEnvelope;
  error: string;
  failedAt: string;
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
  subscribe(options: SubscriptionOptions): Promise<void>;
  /** Events that exhausted their attempts for a subscription. */
  deadLetters(subscription: string, limit?: number): Promise<DeadLetter[]>;
  /** Re-deliver a dead-lettered event to its subscription; returns false if unknown. */
  replay(subscription: string, deadLetterId: string): Promise<boolean>;
  /** Throws when the bus is unreachable (readiness). */
  ping(): Promise<void>;
  /** Stop taking new deliveries, wait for in-flight handlers, then close connections. */
  close(): Promise<void>;
}
