import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { z } from 'zod';
import { defineContract, defineService, event, implement, route, startService, type RunningService } from '../src/index.ts';
import { OUTBOX_CHANNEL } from '../src/messaging/outbox.ts';
import { createTestDatabase, type TestDatabase } from '../src/testing/postgres.ts';
import { cleanupStack, sleep, testBusUrl, waitFor } from './messaging/helpers.ts';

// SERVICE_ROLE splits one service into an api instance (requests only) and a worker instance (event deliveries, the
// outbox relay and background work), on the same database and bus: what `npm start` does with orders.

const TOKEN = 'test-service-token-0123456789';

const contract = defineContract({
  service: 'split',
  routes: {
    emit: route({ method: 'POST', path: '/emit', body: z.object({ note: z.string() }), responses: { 202: z.object({ id: z.string() }) } }),
  },
  events: { Noted: event('split.Noted.v1', z.object({ note: z.string() })) },
});

/** What each instance did, by its SERVICE_INSTANCE. */
const handledBy: { instance: string; eventId: string }[] = [];
const backgroundStarted: string[] = [];

const split = defineService({
  contract,
  defaultPort: 0,
  migrations: new URL('./fixtures/migrations/', import.meta.url),
  bus: true,
  setup: (ctx) => {
    const instance = ctx.config.SERVICE_INSTANCE ?? 'unnamed';
    return {
      routes: implement(contract, {
        emit: async ({ body }) => {
          const envelope = await ctx.db.tx((tx) => ctx.publish(tx, contract.events.Noted, { subject: 'notes', data: { note: body.note } }));
          return { status: 202, body: { id: envelope.id } };
        },
      }),
      subscriptions: [
        {
          name: 'split.react',
          events: [contract.events.Noted],
          async handle(e) {
            handledBy.push({ instance, eventId: e.id });
          },
        },
      ],
      background: () => {
        backgroundStarted.push(instance);
      },
    };
  },
});

const cleanup = cleanupStack();
let data: TestDatabase;
let busUrl: string;
let api: RunningService;
const env = () => ({ PORT: '0', SERVICE_TOKEN: TOKEN, LOG_LEVEL: 'silent', DATABASE_URL: data.url, BUS_URL: busUrl });

before(async () => {
  data = await createTestDatabase('service_role');
  cleanup.add(() => data.drop());
  busUrl = await testBusUrl('pg-boss', cleanup.add);
  api = await startService(split, { ...env(), SERVICE_ROLE: 'api', SERVICE_INSTANCE: 'api' });
  cleanup.add(() => api.stop());
});
after(() => cleanup.run());

async function unpublished(): Promise<number> {
  const client = new pg.Client({ connectionString: data.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM outbox');
    return Number(rows[0]!.n);
  } finally {
    await client.end();
  }
}

test('an api instance serves the routes but leaves the outbox, deliveries and background work to a worker', async () => {
  const res = await fetch(`${api.url}/emit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ note: 'first' }) });
  assert.equal(res.status, 202);
  const { id } = (await res.json()) as { id: string };
  // With a relay, an event leaves the outbox within milliseconds of its commit (LISTEN/NOTIFY); give it far longer.
  await sleep(500);
  assert.equal(await unpublished(), 1, 'the api instance did not relay the event');
  assert.deepEqual(handledBy, [], 'nor did anything handle it');
  assert.deepEqual(backgroundStarted, [], 'and it started no background work');

  const worker = await startService(split, { ...env(), SERVICE_ROLE: 'worker', SERVICE_INSTANCE: 'worker' });
  cleanup.add(() => worker.stop());
  await waitFor('the worker to relay and handle the event', () => handledBy.length === 1);
  assert.deepEqual(handledBy, [{ instance: 'worker', eventId: id }]);
  assert.equal(await unpublished(), 0);
  assert.deepEqual(backgroundStarted, ['worker']);

  // A worker serves the chassis' own routes (health, metrics, admin), not the contract's.
  assert.equal((await fetch(`${worker.url}/health/ready`)).status, 200);
  assert.equal((await fetch(`${worker.url}/metrics`)).status, 200);
  const refused = await fetch(`${worker.url}/emit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ note: 'second' }) });
  assert.equal(refused.status, 404);
  assert.match(refused.headers.get('content-type') ?? '', /application\/problem\+json/);
});

test("an api instance's commit wakes the relays elsewhere (NOTIFY after it), instead of leaving the events to their poll", async () => {
  const listener = new pg.Client({ connectionString: data.url });
  await listener.connect();
  cleanup.add(() => listener.end());
  const heard: string[] = [];
  listener.on('notification', (n) => heard.push(n.channel));
  await listener.query(`LISTEN ${OUTBOX_CHANNEL}`);
  const res = await fetch(`${api.url}/emit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ note: 'wake up' }) });
  assert.equal(res.status, 202);
  await waitFor('a NOTIFY on the outbox channel', () => heard.length > 0);
  assert.equal(heard[0], OUTBOX_CHANNEL);
});

test('SERVICE_ROLE takes all, api or worker and names the bad value otherwise', async () => {
  await assert.rejects(startService(split, { ...env(), SERVICE_ROLE: 'both' }), /SERVICE_ROLE/);
});
