import { createLogger } from '../log/logger.ts';
import type { EventEnvelope } from '../messaging/envelope.ts';
import { createBus } from '../messaging/create-bus.ts';

/**
 * What services published, as a consumer sees it: a subscription of its own on the bus. Tests read events here
 * rather than from a service's outbox, which its relay empties as it publishes.
 */
export interface EventRecorder {
  /** Every event received, in the order received. */
  readonly events: readonly EventEnvelope[];
  /** The events of one type, and of one subject when given. */
  of(type: string, subject?: string): EventEnvelope[];
  /**
   * Resolves once every event written to the outbox of `db` is published and has reached the recorder: after it,
   * a count of events is final (a duplicate would already be here). Fails after `limitMs`.
   */
  settled(db: OutboxDatabase, limitMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** A connection to a service's database: a chassis `Db` or a `pg` pool or client. */
export interface OutboxDatabase {
  query(text: string): Promise<{ rows: unknown[] }>;
}

export interface RecordEventsOptions {
  busUrl: string;
  /** The subscription's name; unique per test file, so two files sharing a bus do not split its events. */
  name: string;
  /** The events to record: a contract's `events`, every one of which is subscribed to. */
  events: Readonly<Record<string, { type: string }>>;
}

const POLL_MS = 25;

/**
 * Subscribes to `events` on the bus at `busUrl`. Call it before they are published: pg-boss gives an event only to
 * the queues subscribed when it is published. One delivery at a time, so events arrive in publish order.
 */
export async function recordEvents(options: RecordEventsOptions): Promise<EventRecorder> {
  const bus = createBus({ url: options.busUrl, service: options.name, log: createLogger({ service: options.name, level: 'silent' }) });
  const subscriptionStats = bus.subscriptionStats?.bind(bus);
  if (!subscriptionStats) throw new Error(`recordEvents: the ${bus.kind} bus cannot tell when a subscription has nothing pending`);
  await bus.start();
  const events: EventEnvelope[] = [];
  const types = Object.values(options.events).map((e) => e.type);
  await bus.subscribe({ name: options.name, types, concurrency: 1, handler: async (event) => void events.push(event) });

  async function until(what: string, limitMs: number, check: () => Promise<boolean>): Promise<void> {
    const giveUp = Date.now() + limitMs;
    while (!(await check())) {
      if (Date.now() > giveUp) throw new Error(`recordEvents: gave up waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  return {
    events,
    of: (type, subject) => events.filter((e) => e.type === type && (subject === undefined || e.subject === subject)),
    async settled(db, limitMs = 15_000) {
      await until('an empty outbox', limitMs, async () => (await db.query('SELECT 1 FROM outbox LIMIT 1')).rows.length === 0);
      await until(`${options.name} to have every event`, limitMs, async () => (await subscriptionStats()).every((s) => s.pending === 0));
    },
    close: () => bus.close(),
  };
}
