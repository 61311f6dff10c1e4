import type { Db, TxClient } from '../data/db.ts';
import { createBatcher, type BatchLimits, type BatchObserver, type InContext } from '../data/group-commit.ts';
import { linkBatch } from '../trace/db-spans.ts';
import type { Delivery } from './bus.ts';
import type { EventEnvelope } from './envelope.ts';
import { inboxOnce, type InboxEventHandler, type InboxHandler, type InboxOutcome } from './inbox.ts';

/** One delivery of a batch: the event and its delivery facts. */
export interface BatchItem {
  event: EventEnvelope;
  delivery: Delivery;
}

/** A delivery of a batch being handled: `inContext` runs a function in the delivery's own work context (trace). */
export interface BatchDelivery extends BatchItem {
  inContext: InContext;
}

/**
 * Handles several deliveries in one transaction: all their effects commit together or not at all. It gets only the
 * events the inbox has not seen (each at most once), in arrival order.
 */
export type InboxBatchHandler = (items: readonly BatchDelivery[], tx: TxClient) => Promise<void>;

/**
 * Group commit for an event consumer (data/group-commit.ts: createBatcher). The bus hands a consumer its deliveries
 * one by one; under load many arrive together, and one transaction each costs a BEGIN, a COMMIT (a wait for the
 * disk) and the round trips between. Deliveries that arrive while the consumer's transactions are busy are
 * handled as a batch: one transaction records every event in the inbox (one statement, duplicates skipped) and runs
 * `batch` for the new ones. An idle consumer sees batches of one, handled as `idempotentHandler` does.
 *
 * The bus semantics do not change: each delivery's promise settles on its own. If a batch fails (a poison event,
 * a dependency refusing one of them, a deadlock), nothing of it committed, and each of its deliveries is handled
 * again by `single` in a transaction of its own, so the one at fault fails (and is retried, then dead-lettered by
 * the bus) while the others succeed. Anything `batch` does outside its transaction (calls to other services) may
 * thus run twice for one event and must be safe to repeat, as for any redelivery.
 *
 * The caller opens each delivery's work context (runConsumer), as idempotentHandler does for its own: a batch's
 * transaction runs in its first delivery's, a delivery handled alone in its own.
 */
export function idempotentBatchHandler(
  db: Db,
  consumer: string,
  single: InboxHandler,
  batch: InboxBatchHandler,
  limits: BatchLimits,
  options: { withFirstQuery?: boolean; observer?: BatchObserver | undefined } = {},
): InboxEventHandler {
  // In the delivery's own work context: the caller has opened it (runConsumer, with its consume span).
  const handleAlone = inboxOnce(db, consumer, single, options.withFirstQuery === true);
  const grouped = createBatcher<BatchItem, InboxOutcome>({
    limits,
    ...(options.observer ? { observer: options.observer } : {}),
    alone: (item) => handleAlone(item.event, item.delivery),
    batch: (items, contexts) => db.tx((tx) => handleBatch(items.map((item, i) => ({ ...item, inContext: contexts[i]! })), tx)),
  });

  async function handleBatch(items: readonly BatchDelivery[], tx: TxClient): Promise<InboxOutcome[]> {
    linkBatch(items.map((i) => i.inContext));
    // The batch's event ids as one array: one statement whatever the batch's size, which travels with the BEGIN as
    // EXECUTE of a prepared statement (db.ts): one round trip, planned once per connection.
    const { rows: recorded } = await tx.query<{ event_id: string }>(
      'INSERT INTO inbox (consumer, event_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING RETURNING event_id',
      [consumer, items.map((i) => i.event.id)],
    );
    // PostgreSQL answers the uuid in lower case.
    const fresh = new Set(recorded.map((r) => r.event_id));
    // The same event twice in one batch (a redelivery racing the first) is new once.
    const outcomes = items.map((item): InboxOutcome => (fresh.delete(item.event.id.toLowerCase()) ? 'handled' : 'duplicate'));
    const todo = items.filter((_, i) => outcomes[i] === 'handled');
    if (todo.length > 0) await batch(todo, tx);
    return outcomes;
  }

  return (event, delivery) => grouped({ event, delivery });
}
