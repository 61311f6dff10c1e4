import type { Db, Queryable } from '../data/db.ts';
import { contextFrom, runWithContext } from '../trace/context.ts';
import type { Delivery, EventHandler } from './bus.ts';
import type { EventEnvelope } from './envelope.ts';

export type InboxHandler = (event: EventEnvelope, tx: Queryable, delivery: Delivery) => Promise<void>;

/**
 * Makes an at-least-once delivery effectively-once: the event id is recorded in `inbox` in the same
 * transaction as the handler's effect, so a redelivery finds it and is skipped, and a failed handler rolls
 * both back. A concurrent duplicate blocks on the primary key until the first commits (then skips) or rolls
 * back (then handles), so two deliveries never both apply the effect.
 *
 * `consumer` names the effect, usually the subscription name; two handlers of one service reacting to the
 * same event need different names.
 *
 * The memory is bounded: the outbox relay deletes inbox rows older than its inboxRetentionMs (7 days by default,
 * see retention.ts), so a redelivery of an event handled longer ago than that is not recognised and is handled
 * again.
 */
export function idempotentHandler(db: Db, consumer: string, fn: InboxHandler): EventHandler {
  return (event, delivery) =>
    runWithContext(
      contextFrom({ traceparent: event.traceparent, tracestate: event.tracestate, requestId: event.id }),
      () =>
        db.tx(async (tx) => {
          const inserted = await tx.query(
            'INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING',
            [consumer, event.id],
          );
          if (inserted.rowCount === 0) return;
          await fn(event, tx, delivery);
        }),
    );
}
