import type { Db, Queryable, TxClient } from '../data/db.ts';
import type { Tracer } from '@opentelemetry/api';
import { runConsumer } from '../trace/consumer.ts';
import type { Delivery } from './bus.ts';
import type { EventEnvelope } from './envelope.ts';

export type InboxHandler = (event: EventEnvelope, tx: Queryable, delivery: Delivery) => Promise<void>;

/** What became of a delivery: its effect was applied, or it was a duplicate the inbox turned away (metrics). */
export type InboxOutcome = 'handled' | 'duplicate';

/** An EventHandler that also says whether the delivery had its effect or was a duplicate. */
export type InboxEventHandler = (event: EventEnvelope, delivery: Delivery) => Promise<InboxOutcome>;

export interface InboxOptions {
  /**
   * Record the event in the inbox in the same message as the handler's first query instead of a round trip of
   * its own before the handler starts. A duplicate then makes that first query fail (the inbox insert ahead of it
   * hits the primary key) and the handler's transaction is rolled back: the effect still happens once. Only for
   * handlers whose first step is a query: anything a handler does before its first query (a call to another
   * service) may run again for a duplicate, so it must be harmless to repeat.
   */
  withFirstQuery?: boolean;
  /** The service's tracer: each delivery is handled under a `consume <type>` span (trace/consumer.ts). */
  tracer?: Tracer | undefined;
}

/** The duplicate check of `withFirstQuery`: the event's inbox row is there already. */
const isInboxConflict = (err: unknown): boolean =>
  (err as { code?: string; table?: string } | undefined)?.code === '23505' && (err as { table?: string }).table === 'inbox';

/** Thrown inside the transaction to roll a duplicate back; caught below. */
const DUPLICATE = Symbol('duplicate event');

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
export function idempotentHandler(db: Db, consumer: string, fn: InboxHandler, options: InboxOptions = {}): InboxEventHandler {
  const once = inboxOnce(db, consumer, fn, options.withFirstQuery === true);
  return (event, delivery) => runConsumer(options.tracer, consumer, event, delivery.attempt, () => once(event, delivery));
}

const RECORD = 'INSERT INTO inbox (consumer, event_id) VALUES ($1, $2::uuid)';
const RECORD_UNLESS_SEEN = `${RECORD} ON CONFLICT DO NOTHING`;

/** idempotentHandler's transaction, in the caller's work context (inbox-batch.ts opens the delivery's itself). */
export function inboxOnce(db: Db, consumer: string, fn: InboxHandler, withFirstQuery: boolean): InboxEventHandler {
  // The insert travels with the BEGIN (db.ts: as EXECUTE of a prepared statement): one round trip for both.
  return async (event, delivery) => {
    if (!withFirstQuery) {
      return db.tx(async (tx): Promise<InboxOutcome> => {
        const inserted = await tx.query(RECORD_UNLESS_SEEN, [consumer, event.id]);
        if (inserted.rowCount === 0) return 'duplicate';
        await fn(event, tx, delivery);
        return 'handled';
      });
    }
    try {
      await db.tx(async (tx: TxClient) => {
        tx.prelude(RECORD, [consumer, event.id]);
        try {
          await fn(event, tx, delivery);
        } catch (err) {
          if (isInboxConflict(tx.firstMessageError)) throw DUPLICATE;
          throw err;
        }
        // The handler may have caught its first query's error: the transaction is aborted all the same.
        if (isInboxConflict(tx.firstMessageError)) throw DUPLICATE;
      });
      return 'handled';
    } catch (err) {
      // A handler that made no query meets the inbox only at the commit, whose message then fails the same way.
      if (err === DUPLICATE || isInboxConflict(err)) return 'duplicate';
      throw err;
    }
  };
}
