import type { Queryable } from '../data/db.ts';
import { currentContext, outgoingTraceparent } from '../trace/context.ts';
import { createEnvelope, type EventEnvelope, type NewEvent } from './envelope.ts';

/** Channel the relay LISTENs on; a NOTIFY is delivered only when the writing transaction commits. */
export const OUTBOX_CHANNEL = 'simplebank_outbox';

/**
 * Records events in the outbox within the caller's transaction, so they are published if and only if the
 * state change commits. Pass the transaction's client (`db.tx(async (tx) => …)`), not the pool: on the pool
 * each insert would commit on its own and a later rollback would leave the events behind.
 */
export async function appendToOutbox(client: Queryable, source: string, events: NewEvent[]): Promise<EventEnvelope[]> {
  if (events.length === 0) return [];
  const ctx = currentContext();
  const trace = { traceparent: outgoingTraceparent(ctx), tracestate: ctx?.tracestate };
  const envelopes = events.map((e) =>
    createEnvelope(source, { ...e, causationId: e.causationId ?? ctx?.requestId }, trace),
  );

  const values: unknown[] = [];
  const rows = envelopes.map((env, i) => {
    values.push(env.id, env.type, env.subject, JSON.stringify(env));
    const p = i * 4;
    return `($${p + 1}, $${p + 2}, $${p + 3}, $${p + 4}::jsonb)`;
  });
  // One statement keeps the events' seq order equal to their order in `events`.
  await client.query(`INSERT INTO outbox (id, type, subject, envelope) VALUES ${rows.join(', ')}`, values);
  await client.query(`SELECT pg_notify('${OUTBOX_CHANNEL}', '')`);
  return envelopes;
}
