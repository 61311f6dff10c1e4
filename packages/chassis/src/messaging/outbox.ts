import { isTxClient, type Queryable, type Statement } from '../data/db.ts';
import { gatherer } from '../data/gather.ts';
import { wakeAfterCommit } from '../data/wake.ts';
import type { Tracer } from '@opentelemetry/api';
import { currentContext } from '../trace/context.ts';
import { eventTrace, type EventTrace } from '../trace/messaging-spans.ts';
import { createEnvelope, type EventEnvelope, type NewEvent } from './envelope.ts';

/** Channel the relay LISTENs on; a NOTIFY is delivered only when the writing transaction commits. */
export const OUTBOX_CHANNEL = 'simplebank_outbox';

/**
 * Any number of envelopes (a JSON array) in one statement of one text, so it is prepared once per connection
 * (db.ts); rows in the array's order, so seq follows it.
 */
const INSERT_ENVELOPES = `INSERT INTO outbox (id, type, subject, envelope)
  SELECT (e->>'id')::uuid, e->>'type', e->>'subject', e FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(e, n) ORDER BY n`;

/**
 * A transaction's events in one statement, in the order appended (seq follows the rows' order), however many calls
 * append them: a batch of saga steps publishes dozens. The relays of this process are woken once it has committed.
 */
const outboxRows = gatherer(
  (tx): string[] => {
    wakeAfterCommit(tx, OUTBOX_CHANNEL);
    return [];
  },
  // Opened by the first append, so never empty.
  (envelopes): Statement => ({ text: INSERT_ENVELOPES, values: [`[${envelopes.join(',')}]`] }),
);

/**
 * Records events in the outbox within the caller's transaction, so they are published if and only if the
 * state change commits. Pass the transaction's client (`db.tx(async (tx) => …)`), not the pool: on the pool
 * each insert would commit on its own and a later rollback would leave the events behind.
 *
 * In a `db.tx` transaction the rows are written in the COMMIT's round trip (TxClient.beforeCommit), in the order
 * appended, as one statement for the whole transaction, and the relays of this process are woken in memory once it has committed. No NOTIFY: in PostgreSQL a
 * transaction that NOTIFYs holds a cluster-wide lock from its commit until the commit is on disk, so every
 * notifying commit of every database waits its turn for its own fsync (group commit no longer helps). The relay in
 * this process publishes them at once; a process without one wakes the others' after the commit (data/wake.ts).
 * Any other client (a plain pg client) still gets the insert and a NOTIFY, for relays LISTENing elsewhere.
 */
export async function appendToOutbox(client: Queryable, source: string, events: NewEvent[], tracer?: Tracer): Promise<EventEnvelope[]> {
  if (events.length === 0) return [];
  const ctx = currentContext();
  // Each envelope carries the context of its `outbox` span when the work is traced (the tracer is for events that
  // continue a stored trace: no work context has it then), else the current context as it is.
  const traces = events.map((e) => eventTrace(ctx, tracer, e.type, e.trace));
  const envelopes = events.map((e, i) =>
    createEnvelope(source, { ...e, causationId: e.causationId ?? ctx?.requestId }, traces[i]),
  );
  const spans = traces.some((t) => t.span !== undefined);
  if (spans) envelopes.forEach((env, i) => traces[i]!.span?.setAttribute('messaging.message.id', env.id));

  if (isTxClient(client)) {
    // As JSON now: what is stored is the envelope as published, whatever becomes of the object.
    outboxRows(client).push(...envelopes.map((env) => JSON.stringify(env)));
    // The outbox spans end when the events exist: at the commit (a rollback leaves them unfinished, unexported).
    if (spans) client.afterCommit(() => endEventSpans(traces));
    return envelopes;
  }

  const values: unknown[] = [];
  const rows = envelopes.map((env, i) => {
    values.push(env.id, env.type, env.subject, JSON.stringify(env));
    const p = i * 4;
    return `($${p + 1}, $${p + 2}, $${p + 3}, $${p + 4}::jsonb)`;
  });
  // One statement keeps the events' seq order equal to their order in `events`.
  await client.query(`INSERT INTO outbox (id, type, subject, envelope) VALUES ${rows.join(', ')}`, values);
  await client.query(`SELECT pg_notify('${OUTBOX_CHANNEL}', '')`);
  if (spans) endEventSpans(traces);
  return envelopes;
}

function endEventSpans(traces: EventTrace[]): void {
  for (const t of traces) t.span?.end();
}
