import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Db } from '../../src/data/db.ts';
import type { Bus } from '../../src/messaging/bus.ts';
import type { EventEnvelope } from '../../src/messaging/envelope.ts';
import { appendToOutbox } from '../../src/messaging/outbox.ts';
import { startOutboxRelay } from '../../src/messaging/relay.ts';
import { cleanupStack, serviceDatabase, sleep, testLog, waitFor } from './helpers.ts';

/** A bus that records what it is given, optionally slowly or failing, to watch the relay alone. */
function recordingBus(behaviour: { delayMs?: number; failWhen?: (e: EventEnvelope, calls: number) => boolean } = {}) {
  const published: EventEnvelope[] = [];
  let calls = 0;
  const bus: Bus = {
    kind: 'pg-boss',
    start: async () => {},
    async publish(e) {
      calls++;
      if (behaviour.delayMs) await sleep(Math.random() * behaviour.delayMs);
      if (behaviour.failWhen?.(e, calls)) throw new Error('bus unavailable');
      published.push(e);
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

const numbers = (events: EventEnvelope[]) => events.map((e) => (e.data as { i: number }).i);

test('relay: a failed publish leaves the event in the outbox and it goes out, in order, on a later round', async () => {
  const cleanup = cleanupStack();
  try {
    const db = await serviceDatabase('relayfail', cleanup.add);
    // The 4th publish call fails, and so does every call for a while after it: the relay must back off and retry.
    const fake = recordingBus({ failWhen: (_e, calls) => calls >= 4 && calls < 7 });
    const relay = startOutboxRelay({ db, bus: fake.bus, log: testLog, pollIntervalMs: 50 });
    cleanup.add(() => relay.stop());
    await appendN(db, 10);
    await waitFor('all 10 published', () => fake.published.length >= 10);
    assert.deepEqual(numbers(fake.published), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.ok(fake.calls() >= 13, 'the failing publishes were attempted');
    await waitFor('an empty backlog', async () => (await relay.backlog()) === 0);
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

test('relay: stop() finishes the in-flight batch, and marks exactly what it published', async () => {
  const cleanup = cleanupStack();
  try {
    const db = await serviceDatabase('relaystop', cleanup.add);
    await appendN(db, 30);
    const fake = recordingBus({ delayMs: 20 });
    const relay = startOutboxRelay({ db, bus: fake.bus, log: testLog, batchSize: 10 });
    await waitFor('the first publish', () => fake.published.length > 0);
    await relay.stop();
    const countAfterStop = fake.published.length;
    const marked = await db.many<{ id: string }>('SELECT id FROM outbox WHERE published_at IS NOT NULL ORDER BY seq');
    assert.deepEqual(marked.map((r) => r.id), fake.published.map((e) => e.id));
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
    await appendN(db, 1, 0);
    await waitFor('the first event', () => fake.published.length === 1);

    await db.query('SELECT pg_terminate_backend($1)', [firstPid]);
    await waitFor('a new LISTEN connection', async () => {
      const pid = await listenerPid();
      return pid !== undefined && pid !== firstPid;
    });
    await appendN(db, 1, 1);
    await waitFor('the event written after the reconnection', () => fake.published.length === 2);
    assert.deepEqual(numbers(fake.published), [0, 1]);
  } finally {
    await cleanup.run();
  }
});
