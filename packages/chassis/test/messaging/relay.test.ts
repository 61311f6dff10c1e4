import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Db } from '../../src/data/db.ts';
import type { Bus } from '../../src/messaging/bus.ts';
import type { EventEnvelope } from '../../src/messaging/envelope.ts';
import { appendToOutbox } from '../../src/messaging/outbox.ts';
import { startOutboxRelay } from '../../src/messaging/relay.ts';
import { pruneInbox } from '../../src/messaging/retention.ts';
import { cleanupStack, serviceDatabase, sleep, testLog, waitFor } from './helpers.ts';

/**
 * A bus that records what it is given, optionally slowly or failing, to watch the relay alone. A failing
 * publishBatch call stores the first `storedBeforeFailure` events of the batch (NATS may have stored some).
 */
function recordingBus(
  behaviour: { delayMs?: number; failWhen?: (events: EventEnvelope[], calls: number) => boolean; storedBeforeFailure?: number } = {},
) {
  const published: EventEnvelope[] = [];
  let calls = 0;
  const bus: Bus = {
    kind: 'pg-boss',
    start: async () => {},
    publish: (e) => bus.publishBatch([e]),
    async publishBatch(events) {
      calls++;
      if (behaviour.delayMs) await sleep(Math.random() * behaviour.delayMs);
      if (behaviour.failWhen?.(events, calls)) {
        published.push(...events.slice(0, behaviour.storedBeforeFailure ?? 0));
        throw new Error('bus unavailable');
      }
      published.push(...events);
    },
    subscribe: async () => {},
    deadLetters: async () => [],
    replay: async () => false,
    ping: async () => {},
    close: async () => {},
  };
  return { bus, published, calls: () => calls };
}

async function appendN(db: Db, n: number, from = 0): Promise<EventEnvelope[]> {
  const all: EventEnvelope[] = [];
  for (let i = from; i < from + n; i++) {
    all.push(...(await db.tx((tx) => appendToOutbox(tx, 'test', [{ type: 'test.Numbered.v1', subject: 'a', data: { i } }]))));
  }
  return all;
}

/** As a writer in another process would: a plain connection (not db.tx), so the outbox insert NOTIFYs. */
async function appendFromElsewhere(db: Db, i: number): Promise<void> {
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    await appendToOutbox(client, 'test', [{ type: 'test.Numbered.v1', subject: 'a', data: { i } }]);
    await client.query('COMMIT');
  } finally {
    client.release();
  }
}

const numbers = (events: EventEnvelope[]) => events.map((e) => (e.data as { i: number }).i);

test('relay: a failed publish leaves the event in the outbox and it goes out, in order, on a later round', async () => {
  const cleanup = cleanupStack();
  try {
    const db = await serviceDatabase('relayfail', cleanup.add);
    // Small batches so several go through before and after the failures. The 3rd publish call fails, and so does
    // every call for a while after it: the relay must back off and retry.
    await appendN(db, 10);
    const fake = recordingBus({ failWhen: (_e, calls) => calls >= 3 && calls < 6 });
    const relay = startOutboxRelay({ db, bus: fake.bus, log: testLog, pollIntervalMs: 50, batchSize: 3 });
    cleanup.add(() => relay.stop());
    await waitFor('all 10 published', () => fake.published.length >= 10);
    assert.deepEqual(numbers(fake.published), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.ok(fake.calls() >= 7, 'the failing publishes were attempted');
    await waitFor('an empty backlog', async () => (await relay.backlog()) === 0);
  } finally {
    await cleanup.run();
  }
});

test('relay: publishes a batch with one publishBatch call and marks it all in one go', async () => {
  const cleanup = cleanupStack();
  try {
    const db = await serviceDatabase('relaybatch', cleanup.add);
    const all = await db.tx((tx) =>
      appendToOutbox(tx, 'test', Array.from({ length: 25 }, (_, i) => ({ type: 'test.Numbered.v1', subject: 'a', data: { i } }))),
    );
    const fake = recordingBus();
    const relay = startOutboxRelay({ db, bus: fake.bus, log: testLog, batchSize: 10 });
    cleanup.add(() => relay.stop());
    await waitFor('an empty backlog', async () => (await relay.backlog()) === 0);
    assert.equal(fake.calls(), 3, 'one call per batch of up to 10');
    assert.deepEqual(fake.published.map((e) => e.id), all.map((e) => e.id));
  } finally {
    await cleanup.run();
  }
});

test('relay: a batch that failed part-way is republished whole, so nothing overtakes the failed event', async () => {
  const cleanup = cleanupStack();
  try {
    const db = await serviceDatabase('relaypartial', cleanup.add);
    await appendN(db, 10);
    // The first call stores 4 of the batch and then fails, as a NATS publishBatch may.
    const fake = recordingBus({ failWhen: (_e, calls) => calls === 1, storedBeforeFailure: 4 });
    const relay = startOutboxRelay({ db, bus: fake.bus, log: testLog, pollIntervalMs: 50, batchSize: 10 });
    cleanup.add(() => relay.stop());
    await waitFor('an empty backlog', async () => (await relay.backlog()) === 0);
    // The consumer sees duplicates (its inbox drops them); the first sighting of each event is in order.
    assert.deepEqual(numbers(fake.published), [0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  } finally {
    await cleanup.run();
  }
});

test('relay: several relays on one database never publish out of order', async () => {
  const cleanup = cleanupStack();
  try {
    const db = await serviceDatabase('relaymany', cleanup.add);
    await appendN(db, 40);
    const fake = recordingBus({ delayMs: 4 });
    for (let i = 0; i < 3; i++) {
      const relay = startOutboxRelay({ db, bus: fake.bus, log: testLog, batchSize: 5, pollIntervalMs: 20 });
      cleanup.add(() => relay.stop());
    }
    await waitFor('all 40 published', () => fake.published.length >= 40);
    assert.deepEqual(numbers(fake.published), Array.from({ length: 40 }, (_, i) => i));
  } finally {
    await cleanup.run();
  }
});

test('relay: stop() finishes the in-flight batch, and deletes exactly what it published', async () => {
  const cleanup = cleanupStack();
  try {
    const db = await serviceDatabase('relaystop', cleanup.add);
    const written = await appendN(db, 30);
    const fake = recordingBus({ delayMs: 20 });
    const relay = startOutboxRelay({ db, bus: fake.bus, log: testLog, batchSize: 10 });
    await waitFor('the first publish', () => fake.published.length > 0);
    await relay.stop();
    const countAfterStop = fake.published.length;
    assert.deepEqual(fake.published.map((e) => e.id), written.slice(0, countAfterStop).map((e) => e.id));
    const left = await db.many<{ id: string }>('SELECT id FROM outbox ORDER BY seq');
    assert.deepEqual(left.map((r) => r.id), written.slice(countAfterStop).map((e) => e.id), 'the outbox keeps what is not yet published');
    assert.equal(countAfterStop % 10, 0, 'stopped in the middle of a batch');
    assert.equal(await relay.backlog(), 30 - countAfterStop);
    await sleep(100);
    assert.equal(fake.published.length, countAfterStop, 'published after stop() resolved');
  } finally {
    await cleanup.run();
  }
});

test('relay: the LISTEN connection comes back after it is killed, and NOTIFY wakes the relay again', async () => {
  const cleanup = cleanupStack();
  try {
    const db = await serviceDatabase('relaylisten', cleanup.add);
    const fake = recordingBus();
    // A poll far beyond the waits below: only a NOTIFY can make the relay publish in time.
    const relay = startOutboxRelay({ db, bus: fake.bus, log: testLog, pollIntervalMs: 120_000 });
    cleanup.add(() => relay.stop());
    const listenerPid = async () =>
      (await db.one<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'listen:simplebank_outbox'`,
      ))?.pid;
    const firstPid = await waitFor('the LISTEN connection', listenerPid);
    await appendFromElsewhere(db, 0);
    await waitFor('the first event', () => fake.published.length === 1);

    await db.query('SELECT pg_terminate_backend($1)', [firstPid]);
    await waitFor('a new LISTEN connection', async () => {
      const pid = await listenerPid();
      return pid !== undefined && pid !== firstPid;
    });
    await appendFromElsewhere(db, 1);
    await waitFor('the event written after the reconnection', () => fake.published.length === 2);
    assert.deepEqual(numbers(fake.published), [0, 1]);
  } finally {
    await cleanup.run();
  }
});

test('relay: a commit of this process that wrote outbox rows wakes the relay in memory, without NOTIFY', async () => {
  const cleanup = cleanupStack();
  try {
    const db = await serviceDatabase('relaylocal', cleanup.add);
    const fake = recordingBus();
    // A poll far beyond the waits below, and no NOTIFY is sent by db.tx writers: only the in-memory wake-up is quick.
    const relay = startOutboxRelay({ db, bus: fake.bus, log: testLog, pollIntervalMs: 120_000 });
    cleanup.add(() => relay.stop());
    await sleep(200);
    const started = Date.now();
    await appendN(db, 3, 0);
    await waitFor('the events', () => fake.published.length === 3);
    assert.ok(Date.now() - started < 10_000);
    assert.deepEqual(numbers(fake.published), [0, 1, 2]);
    // A rolled-back transaction leaves nothing behind and publishes nothing. The relay publishes in outbox order, so
    // once an event committed after it is out, the rolled-back one (99) would have been out before it: no wait needed.
    await db.tx(async (tx) => {
      await appendToOutbox(tx, 'test', [{ type: 'test.Numbered.v1', subject: 'a', data: { i: 99 } }]);
      throw new Error('rolled back');
    }).catch(() => {});
    await appendN(db, 1, 100);
    await waitFor('the event committed after the rollback', () => fake.published.length >= 4);
    assert.deepEqual(numbers(fake.published), [0, 1, 2, 100]);
    await waitFor('the published rows deleted', async () => (await relay.backlog()) === 0);
  } finally {
    await cleanup.run();
  }
});

/** Inbox rows: five handled `hoursAgo` in the past, three just now. */
async function seedAgedInbox(db: Db, hoursAgo: number): Promise<void> {
  await db.query(
    `INSERT INTO inbox (consumer, event_id, handled_at)
     SELECT 'c', gen_random_uuid(), CASE WHEN i <= 5 THEN now() - $1::int * interval '1 hour' ELSE now() END
     FROM generate_series(1, 8) AS i`,
    [hoursAgo],
  );
}

const inboxRows = async (db: Db) => Number((await db.one<{ n: string }>('SELECT count(*) AS n FROM inbox'))?.n);

test('retention: deletes inbox rows past their retention, in batches, and nothing else', async () => {
  const cleanup = cleanupStack();
  try {
    const db = await serviceDatabase('retention', cleanup.add);
    await seedAgedInbox(db, 2);
    // 90 min: the 2-hour-old rows go, the recent ones stay.
    assert.equal(await pruneInbox(db, { inboxRetentionMs: 90 * 60_000, pruneBatchSize: 2 }), 5);
    assert.equal(await inboxRows(db), 3);
    assert.equal(await pruneInbox(db, { inboxRetentionMs: 90 * 60_000, pruneBatchSize: 2 }), 0, 'a second round finds nothing');

    // The default: 7 days.
    const db2 = await serviceDatabase('retentiondefaults', cleanup.add);
    await seedAgedInbox(db2, 24);
    assert.equal(await pruneInbox(db2), 0);
    await seedAgedInbox(db2, 8 * 24);
    assert.equal(await pruneInbox(db2), 5);
  } finally {
    await cleanup.run();
  }
});

test('retention: the relay prunes the inbox on its own, every pruneIntervalMs', async () => {
  const cleanup = cleanupStack();
  try {
    const db = await serviceDatabase('relayprune', cleanup.add);
    await seedAgedInbox(db, 2);
    await appendN(db, 2);
    const fake = recordingBus();
    const relay = startOutboxRelay({ db, bus: fake.bus, log: testLog, pruneIntervalMs: 100, inboxRetentionMs: 60 * 60_000 });
    cleanup.add(() => relay.stop());
    await waitFor('the aged rows to be pruned', async () => (await inboxRows(db)) === 3);
    await waitFor('the two events', () => fake.published.length === 2);
    assert.equal(await relay.backlog(), 0);
  } finally {
    await cleanup.run();
  }
});
