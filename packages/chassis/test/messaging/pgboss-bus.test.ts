import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import pg from 'pg';
import { createEnvelope } from '../../src/messaging/envelope.ts';
import { createPgBossBus } from '../../src/messaging/pgboss-bus.ts';
import { createTestDatabase } from '../../src/testing/postgres.ts';
import { busSuite } from './bus-suite.ts';
import { cleanupStack, testLog, waitFor } from './helpers.ts';

busSuite({
  name: 'pg-boss',
  ordering: 'single-consumer',
  async environment() {
    const db = await createTestDatabase('bus');
    return {
      newBus: (service, options) => createPgBossBus({ url: db.url, service, log: testLog, ...options }),
      processEnv: { BUS_ADAPTER: 'pg-boss', BUS_URL: db.url },
      cleanup: () => db.drop(),
    };
  },
});

test('pg-boss: a NOTIFY wakes the workers of other processes long before their next poll', async () => {
  const cleanup = cleanupStack();
  try {
    const db = await createTestDatabase('buswake');
    cleanup.add(() => db.drop());
    // Publisher and consumer are separate bus instances (as separate processes would be), and the consumer only
    // polls every 60 s: the event can only arrive within the wait below through the NOTIFY wake-up.
    const publisher = createPgBossBus({ url: db.url, service: 'publisher', log: testLog });
    const consumer = createPgBossBus({ url: db.url, service: 'consumer', log: testLog, pollingIntervalSeconds: 60 });
    cleanup.add(() => publisher.close());
    cleanup.add(() => consumer.close());
    await publisher.start();
    await consumer.start();
    const type = `t.Wake${randomBytes(3).toString('hex')}.v1`;
    const handled: string[] = [];
    await consumer.subscribe({ name: 'test.wake', types: [type], handler: async (e) => void handled.push(e.id) });
    // The worker's first fetch happens when it starts; publish after it has gone to sleep.
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 3; i++) {
      const e = createEnvelope('test', { type, subject: 'x', data: { i } });
      await publisher.publish(e);
      await waitFor(`event ${i} to be handled`, () => handled.includes(e.id), 15_000);
    }
    assert.equal(handled.length, 3);
  } finally {
    await cleanup.run();
  }
});

test('pg-boss: indexes every queue partition for fetching in order and for finding lapsed leases', async () => {
  const cleanup = cleanupStack();
  try {
    const db = await createTestDatabase('busidx');
    cleanup.add(() => db.drop());
    const bus = createPgBossBus({ url: db.url, service: 'indexed', log: testLog });
    cleanup.add(() => bus.close());
    await bus.start();
    // Created on the partitioned parent before this queue existed: PostgreSQL adds them to its partitions.
    await bus.subscribe({ name: 'test.indexed', types: ['t.Indexed.v1'], handler: async () => {} });
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    cleanup.add(() => client.end());
    for (const index of ['simplebank_job_fetch_order', 'simplebank_job_active']) {
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_partition_tree($1::regclass) WHERE isleaf`,
        [`pgboss.${index}`],
      );
      assert.equal(rows[0]?.n, 2, `${index} on the queue and its dead-letter queue`);
    }
  } finally {
    await cleanup.run();
  }
});
