// Group commit (inbox-batch.ts) against a real PostgreSQL: deliveries that arrive together share one transaction,
// each effect happens once, and a batch that fails is handled again delivery by delivery, so only the one at fault
// fails.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { Db, Queryable } from '../../src/data/db.ts';
import { createEnvelope, type EventEnvelope } from '../../src/messaging/envelope.ts';
import { idempotentBatchHandler, type BatchItem } from '../../src/messaging/inbox-batch.ts';
import { currentContext, contextFrom, runWithContext } from '../../src/trace/context.ts';
import { runConsumer } from '../../src/trace/consumer.ts';
import { createTracing } from '../../src/trace/tracing.ts';
import { cleanupStack, serviceDatabase } from './helpers.ts';

const cleanup = cleanupStack();
let db: Db;

before(async () => {
  db = await serviceDatabase('inbox_batch', cleanup.add);
  await db.query('CREATE TABLE effects (event_id uuid NOT NULL, amount int NOT NULL, how text NOT NULL)');
});
after(() => cleanup.run());

const paid = (amount: number): EventEnvelope => createEnvelope('test', { type: 'test.Paid.v1', subject: 'acct', data: { amount } });
const amountOf = (e: EventEnvelope) => (e.data as { amount: number }).amount;

/** A consumer whose effect is a row per event; a negative amount is a poison event its handlers refuse. */
function consumer(limits = { maxSize: 32, transactions: 1 }) {
  const name = `test.batch-${randomUUID().slice(0, 8)}`;
  const batches: number[] = [];
  const insert = (tx: Queryable, e: EventEnvelope, how: string) => {
    if (amountOf(e) < 0) throw new Error(`poison event ${e.id}`);
    return tx.query('INSERT INTO effects (event_id, amount, how) VALUES ($1, $2, $3)', [e.id, amountOf(e), how]);
  };
  const handle = idempotentBatchHandler(
    db,
    name,
    (e, tx) => insert(tx, e, 'alone').then(() => undefined),
    async (items: readonly BatchItem[], tx) => {
      batches.push(items.length);
      for (const { event } of items) await insert(tx, event, 'batch');
    },
    limits,
  );
  return { name, handle, batches };
}

const effectsOf = (events: EventEnvelope[]) =>
  db.many<{ event_id: string; how: string }>('SELECT event_id, how FROM effects WHERE event_id = ANY($1::uuid[]) ORDER BY event_id', [events.map((e) => e.id)]);

test('deliveries that arrive together are handled in one transaction, each once', async () => {
  const c = consumer();
  const events = Array.from({ length: 10 }, (_, i) => paid(i + 1));
  const outcomes = await Promise.all(events.map((e) => c.handle(e, { attempt: 1 })));
  assert.deepEqual(outcomes, Array(10).fill('handled'));
  assert.deepEqual(c.batches, [10]);
  const effects = await effectsOf(events);
  assert.equal(effects.length, 10);
  assert.ok(effects.every((e) => e.how === 'batch'));
  const inbox = await db.many('SELECT 1 FROM inbox WHERE consumer = $1', [c.name]);
  assert.equal(inbox.length, 10);
});

test('a redelivery is a duplicate, in a later batch or in the same one', async () => {
  const c = consumer();
  const [a, b, d] = [paid(1), paid(2), paid(3)];
  assert.deepEqual(await Promise.all([c.handle(a, { attempt: 1 }), c.handle(b, { attempt: 1 })]), ['handled', 'handled']);
  // a again (a later batch), d twice in the same batch.
  const outcomes = await Promise.all([c.handle(a, { attempt: 2 }), c.handle(d, { attempt: 1 }), c.handle(d, { attempt: 2 })]);
  assert.deepEqual(outcomes, ['duplicate', 'handled', 'duplicate']);
  assert.deepEqual(c.batches, [2, 1]);
  assert.equal((await effectsOf([a, b, d])).length, 3);
});

test('a failed batch is handled again delivery by delivery: only the poison event fails, nothing twice', async () => {
  const c = consumer();
  const events = [paid(1), paid(2), paid(-1), paid(4), paid(5)];
  const settled = await Promise.allSettled(events.map((e) => c.handle(e, { attempt: 1 })));
  assert.deepEqual(
    settled.map((s) => s.status),
    ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
  );
  assert.match(String((settled[2] as PromiseRejectedResult).reason), /poison event/);
  const effects = await effectsOf(events);
  assert.deepEqual(
    effects.map((e) => e.event_id).sort(),
    [events[0]!, events[1]!, events[3]!, events[4]!].map((e) => e.id).sort(),
  );
  // The batch rolled back as a whole, so every effect is the one its lone retry made.
  assert.ok(effects.every((e) => e.how === 'alone'));
  // Its inbox rows went with it: the poison event can be handled once it is fixed (here: it never is).
  const inbox = await db.many<{ event_id: string }>('SELECT event_id FROM inbox WHERE consumer = $1', [c.name]);
  assert.equal(inbox.length, 4);
});

test('at most maxSize per transaction and `transactions` at once; the rest wait for the next batch', async () => {
  const c = consumer({ maxSize: 4, transactions: 2 });
  const events = Array.from({ length: 11 }, (_, i) => paid(i + 1));
  await Promise.all(events.map((e) => c.handle(e, { attempt: 1 })));
  assert.ok(c.batches.every((n) => n <= 4), `batches ${c.batches}`);
  assert.equal(c.batches.reduce((a, b) => a + b, 0), 11);
  assert.equal((await effectsOf(events)).length, 11);
});

test('a delivery handled alone runs in its own work context', async () => {
  const seen = new Map<string, string | undefined>();
  const name = `test.batch-ctx-${randomUUID().slice(0, 8)}`;
  const handle = idempotentBatchHandler(
    db,
    name,
    async (e) => void seen.set(e.id, currentContext()?.requestId),
    async () => {
      throw new Error('batches fail here');
    },
    { maxSize: 8, transactions: 1 },
  );
  const events = [paid(1), paid(2), paid(3)];
  await Promise.all(events.map((e) => runWithContext(contextFrom({ requestId: `req-${e.id}` }), () => handle(e, { attempt: 1 }))));
  for (const e of events) assert.equal(seen.get(e.id), `req-${e.id}`);
});

test("a batch's transaction is linked to every delivery's span, and each of those back to it", async () => {
  const tracing = createTracing({ service: 'batcher', config: { OTEL_SDK_DISABLED: false, OTEL_TRACES_SAMPLER: 'always_on', TRACE_RING_SPANS: 1000 } })!;
  const c = consumer();
  // Three deliveries of three traces, handled together.
  const events = [paid(1), paid(2), paid(3)];
  await Promise.all(events.map((e) => runConsumer(tracing.tracer, c.name, e, 1, () => c.handle(e, { attempt: 1 }))));
  assert.deepEqual(c.batches, [3]);
  const spans = tracing.ring!.recentTraces(10).flatMap((t) => tracing.ring!.trace(t.traceId));
  const consumes = events.map((e) => spans.find((s) => s.name === 'consume test.Paid.v1' && s.attributes['messaging.message.id'] === e.id)!);
  assert.ok(consumes.every(Boolean), 'a consume span per delivery');
  const transactions = spans.filter((s) => s.name === 'transaction' && s.attributes['simplebank.batch.size'] === 3);
  assert.equal(transactions.length, 1);
  const tx = transactions[0]!;
  // In the first delivery's trace, linked to the other two.
  assert.equal(tx.parentSpanContext?.spanId, consumes[0]!.spanContext().spanId);
  assert.deepEqual(tx.links.map((l) => l.context.spanId).sort(), [consumes[1]!, consumes[2]!].map((s) => s.spanContext().spanId).sort());
  for (const consume of consumes.slice(1)) assert.deepEqual(consume.links.map((l) => l.context.spanId), [tx.spanContext().spanId]);
  assert.deepEqual(consumes[0]!.links, []);
  // Links are the linked spans' own: no other span (the batch's queries, say) shows any.
  const linked = new Set([tx, consumes[1], consumes[2]]);
  assert.deepEqual(spans.filter((x) => !linked.has(x) && x.links.length > 0).map((x) => x.name), []);
});
