import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import {
  createEnvelope,
  createServiceMetrics,
  defineContract,
  defineService,
  event,
  idempotentBatchHandler,
  idempotentHandler,
  implement,
  messagingMetrics,
  parseExposition,
  route,
  sampleValue,
  startService,
  type Bus,
  type Exposition,
  type RunningService,
} from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from '../src/testing/postgres.ts';
import { cleanupStack, jetStreamReachable, NATS_MISSING, serviceDatabase, testBusUrl, waitFor } from './messaging/helpers.ts';

// Messaging metrics of a real service on a real bus: outbox backlog and relay, handler outcomes, redeliveries,
// consumer backlog and dead letters, on pg-boss and (when it runs) NATS JetStream.

const TOKEN = 'test-service-token-0123456789';

const contract = defineContract({
  service: 'metered',
  routes: {
    emit: route({ method: 'POST', path: '/emit/:kind', params: z.object({ kind: z.enum(['fine', 'flaky', 'poison']) }), responses: { 202: z.object({}) } }),
  },
  events: { Happened: event('metered.Happened.v1', z.object({ kind: z.string() })) },
});

const failedOnce = new Set<string>();
const metered = defineService({
  contract,
  defaultPort: 0,
  migrations: new URL('./fixtures/migrations/', import.meta.url),
  bus: true,
  setup: (ctx) => ({
    routes: implement(contract, {
      emit: async ({ params }) => {
        await ctx.db.tx((tx) => ctx.publish(tx, contract.events.Happened, { subject: params.kind, data: { kind: params.kind } }));
        return { status: 202, body: {} };
      },
    }),
    subscriptions: [
      {
        name: 'metered.react',
        events: [contract.events.Happened],
        maxAttempts: 2,
        backoffMs: 10,
        async handle(e) {
          const { kind } = e.data as { kind: string };
          if (kind === 'poison') throw new Error('cannot handle this one');
          if (kind === 'flaky' && !failedOnce.has(e.id)) {
            failedOnce.add(e.id);
            throw new Error('fails the first time');
          }
        },
      },
      {
        // Group commit with `handle` for each delivery in turn: the poison event must fail alone.
        name: 'metered.grouped',
        events: [contract.events.Happened],
        maxAttempts: 2,
        backoffMs: 10,
        concurrency: 16,
        batch: { maxSize: 8, transactions: 1 },
        async handle(e) {
          if ((e.data as { kind: string }).kind === 'poison') throw new Error('cannot handle this one');
        },
      },
    ],
  }),
});

const natsUp = await jetStreamReachable();

for (const engine of ['pg-boss', 'nats'] as const) {
  describe(`messaging metrics on ${engine}`, { skip: engine === 'nats' && !natsUp ? NATS_MISSING : false }, () => {
    const cleanup = cleanupStack();
    let service: RunningService;

    before(async () => {
      const data: TestDatabase = await createTestDatabase('metrics_svc');
      cleanup.add(() => data.drop());
      const busUrl = await testBusUrl(engine, cleanup.add);
      service = await startService(metered, { PORT: '0', SERVICE_TOKEN: TOKEN, LOG_LEVEL: 'silent', DATABASE_URL: data.url, BUS_URL: busUrl });
      cleanup.add(() => service.stop());
    });
    after(() => cleanup.run());

    const scrape = async (): Promise<Exposition> => parseExposition(await (await fetch(`${service.url}/metrics`)).text());
    const emit = async (kind: string) => assert.equal((await fetch(`${service.url}/emit/${kind}`, { method: 'POST' })).status, 202);
    const handled = (e: Exposition, outcome: string) =>
      sampleValue(e, 'bus_handler_duration_seconds_count', { subscription: 'metered.react', event_type: 'metered.Happened.v1', outcome });

    test('every messaging metric is exported from the start', async () => {
      const e = await scrape();
      for (const name of ['outbox_backlog_events', 'outbox_lag_seconds', 'outbox_published_total', 'bus_consumer_lag_events', 'bus_handler_duration_seconds', 'bus_redeliveries_total', 'bus_dead_letter_events', 'bus_batch_size', 'bus_batches_redone_total']) {
        assert.ok(e.families.has(name), `${name} is declared`);
      }
      assert.equal(sampleValue(e, 'bus_redeliveries_total', { subscription: 'metered.react' }), 0);
      assert.equal(sampleValue(e, 'bus_dead_letter_events', { subscription: 'metered.react' }), 0);
      assert.ok(e.samples.some((s) => s.name === 'bus_consumer_lag_events' && s.labels.subscription === 'metered.react'));
    });

    test('published events, handled deliveries, a redelivery and a dead letter show up', async () => {
      await emit('fine');
      await emit('flaky');
      await emit('poison');
      const e = await waitFor('the deliveries to be handled and dead-lettered', async () => {
        const x = await scrape();
        return handled(x, 'ok') === 2 && sampleValue(x, 'bus_dead_letter_events', { subscription: 'metered.react' }) === 1 ? x : undefined;
      });
      assert.equal(sampleValue(e, 'outbox_published_total'), 3);
      assert.equal(sampleValue(e, 'outbox_backlog_events'), 0);
      assert.equal(sampleValue(e, 'outbox_lag_seconds'), 0);
      // flaky failed once, poison twice (maxAttempts 2): three errors, two of them followed by a redelivery.
      assert.equal(handled(e, 'error'), 3);
      assert.equal(sampleValue(e, 'bus_redeliveries_total', { subscription: 'metered.react' }), 2);
      // The grouped subscription handled the same three: two ok, the poison one dead-lettered alone.
      const grouped = await waitFor('the grouped subscription to dead-letter the poison event', async () => {
        const x = await scrape();
        return sampleValue(x, 'bus_dead_letter_events', { subscription: 'metered.grouped' }) === 1 ? x : undefined;
      });
      const groupedOk = sampleValue(grouped, 'bus_handler_duration_seconds_count', { subscription: 'metered.grouped', event_type: 'metered.Happened.v1', outcome: 'ok' });
      assert.equal(groupedOk, 2);
      assert.ok(sampleValue(grouped, 'bus_batch_size_count', { subscription: 'metered.grouped' }) >= 1);
      assert.ok(sampleValue(grouped, 'bus_batch_size_sum', { subscription: 'metered.grouped' }) >= 4, 'fine, flaky and two attempts of poison went through transactions');
      const lag = await waitFor('the consumer backlog to drain', async () => {
        const x = await scrape();
        return sampleValue(x, 'bus_consumer_lag_events', { subscription: 'metered.react' }) === 0 ? x : undefined;
      });
      assert.ok(lag);
    });
  });
}

test('outbox backlog and lag are read at scrape time; a duplicate delivery is its own outcome', async () => {
  const cleanup = cleanupStack();
  try {
    const db = await serviceDatabase('metrics_outbox', cleanup.add);
    const metrics = createServiceMetrics({ defaultMetrics: false });
    // A bus that reports nothing: the consumer gauges are then not declared.
    const bus = {} as Bus;
    const messaging = messagingMetrics(metrics, { db, bus });
    const envelope = createEnvelope('metered', { type: 'metered.Happened.v1', subject: 's', data: {} }, {});
    await db.query(`INSERT INTO outbox (id, type, subject, envelope, created_at) VALUES ($1, $2, $3, $4, now() - interval '30 seconds')`, [envelope.id, envelope.type, envelope.subject, JSON.stringify(envelope)]);
    let e = parseExposition((await metrics.scrape()).body);
    assert.equal(sampleValue(e, 'outbox_backlog_events'), 1);
    assert.ok(sampleValue(e, 'outbox_lag_seconds') >= 30);
    assert.equal(e.families.has('bus_consumer_lag_events'), false);

    const handler = messaging.handler('metered.react', ['metered.Happened.v1'], idempotentHandler(db, 'metered.react', async () => {}));
    const delivered = { ...envelope, id: randomUUID() };
    await handler(delivered, { attempt: 1 });
    await handler(delivered, { attempt: 2 });
    await handler({ ...delivered, id: randomUUID(), type: 'unexpected.Type.v1' }, { attempt: 1 });
    // A second scrape within a second reuses the first one's outbox read.
    e = parseExposition((await metrics.scrape()).body);
    const count = (event_type: string, outcome: string) => sampleValue(e, 'bus_handler_duration_seconds_count', { subscription: 'metered.react', event_type, outcome });
    assert.equal(count('metered.Happened.v1', 'ok'), 1);
    assert.equal(count('metered.Happened.v1', 'duplicate'), 1);
    assert.equal(count('other', 'ok'), 1, 'a type the subscription did not declare is labelled other');
    assert.equal(sampleValue(e, 'bus_redeliveries_total', { subscription: 'metered.react' }), 1);
  } finally {
    await cleanup.run();
  }
});

test("a group-commit subscription's batches: deliveries per transaction, and batches redone one by one", async () => {
  const cleanup = cleanupStack();
  try {
    const db = await serviceDatabase('metrics_batches', cleanup.add);
    const metrics = createServiceMetrics({ defaultMetrics: false });
    const messaging = messagingMetrics(metrics, { db, bus: {} as Bus });
    const handle = idempotentBatchHandler(
      db,
      'metered.batched',
      async (e) => {
        if ((e.data as { kind?: string }).kind === 'poison') throw new Error('cannot handle this one');
      },
      async (items) => {
        if (items.some((i) => (i.event.data as { kind?: string }).kind === 'poison')) throw new Error('cannot handle this one');
      },
      { maxSize: 8, transactions: 1 },
      { observer: messaging.batches('metered.batched') },
    );
    const happened = (kind: string) => createEnvelope('metered', { type: 'metered.Happened.v1', subject: kind, data: { kind } }, {});
    // Three together: one transaction of three.
    await Promise.all(['a', 'b', 'c'].map((k) => handle(happened(k), { attempt: 1 })));
    // Four together, one of them poison: the batch of four is redone, each alone (four transactions of one).
    const settled = await Promise.allSettled(['d', 'poison', 'e', 'f'].map((k) => handle(happened(k), { attempt: 1 })));
    assert.deepEqual(settled.map((x) => x.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const e = parseExposition((await metrics.scrape()).body);
    const labels = { subscription: 'metered.batched' };
    assert.equal(sampleValue(e, 'bus_batch_size_count', labels), 6);
    assert.equal(sampleValue(e, 'bus_batch_size_sum', labels), 3 + 4 + 4);
    assert.equal(sampleValue(e, 'bus_batch_size_bucket', { ...labels, le: '1' }), 4);
    assert.equal(sampleValue(e, 'bus_batches_redone_total', labels), 1);
  } finally {
    await cleanup.run();
  }
});

test('a scrape still answers when the outbox cannot be read', async () => {
  const metrics = createServiceMetrics({ defaultMetrics: false });
  const db = { one: () => Promise.reject(new Error('database down')) } as unknown as Parameters<typeof messagingMetrics>[1]['db'];
  const warnings: string[] = [];
  messagingMetrics(metrics, { db, bus: {} as Bus, log: { warn: (_obj, msg) => void warnings.push(msg) } });
  const e = parseExposition((await metrics.scrape()).body);
  assert.ok(e.families.has('outbox_backlog_events'));
  assert.deepEqual(warnings, ['could not read the outbox backlog for metrics']);
});
