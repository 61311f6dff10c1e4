// Throughput of the event path, for each bus adapter:
//   relay    N events already in a service's outbox → relay (publishBatch per batch) → bus → a consumer
//            (concurrency 8, trivial handler); time from the relay's start until the consumer has them all.
//   consume  N events already on the bus → one consumer instance (concurrency 8); time until all are handled,
//            with a trivial handler and with an inbox handler (a transaction per event on a service database).
//   node --import tsx bench/relay-throughput.ts [events]   (default 5000; NATS_URL, default nats://127.0.0.1:4222)
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { connect } from 'nats';
import { createDb, type Db } from '../packages/chassis/src/data/db.ts';
import { migrate } from '../packages/chassis/src/data/migrate.ts';
import { createLogger } from '../packages/chassis/src/log/logger.ts';
import type { Bus, EventHandler } from '../packages/chassis/src/messaging/bus.ts';
import { createEnvelope } from '../packages/chassis/src/messaging/envelope.ts';
import { idempotentHandler } from '../packages/chassis/src/messaging/inbox.ts';
import { createNatsBus } from '../packages/chassis/src/messaging/nats-bus.ts';
import { appendToOutbox } from '../packages/chassis/src/messaging/outbox.ts';
import { createPgBossBus } from '../packages/chassis/src/messaging/pgboss-bus.ts';
import { startOutboxRelay } from '../packages/chassis/src/messaging/relay.ts';
import { createTestDatabase, type TestDatabase } from '../packages/chassis/src/testing/postgres.ts';

const N = Number(process.argv[2] ?? 5000);
const CONCURRENCY = 8;
const log = createLogger({ service: 'bench', level: 'warn' });
const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const uid = () => randomBytes(3).toString('hex');

type NewBus = (service: string) => Bus;

function report(label: string, count: number, ms: number) {
  console.log(`${label.padEnd(44)} n=${count}  ${(ms / 1000).toFixed(2).padStart(6)} s  ${Math.round((count / ms) * 1000).toString().padStart(6)} events/s`);
}

/** Resolves when `count` distinct events have been handled (or rejects after a generous timeout). */
function counter(count: number) {
  const seen = new Set<string>();
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  return {
    record(id: string) {
      seen.add(id);
      if (seen.size === count) done();
    },
    wait: (label: string) =>
      Promise.race([
        finished,
        new Promise((_, reject) => setTimeout(() => reject(new Error(`${label}: ${seen.size}/${count} handled after 120 s`)), 120_000).unref()),
      ]),
  };
}

async function serviceDb(): Promise<{ db: Db; tdb: TestDatabase }> {
  const tdb = await createTestDatabase('bench_svc');
  const db = createDb(tdb.url, { max: 10 });
  await migrate(db);
  return { db, tdb };
}

async function relayThroughput(label: string, newBus: NewBus) {
  const { db, tdb } = await serviceDb();
  const [producer, consumer] = [newBus('producer'), newBus('consumer')];
  try {
    await producer.start();
    await consumer.start();
    const type = `bench.Relayed${uid()}.v1`;
    const handled = counter(N);
    await consumer.subscribe({ name: `bench.relay-${uid()}`, types: [type], concurrency: CONCURRENCY, handler: async (e) => handled.record(e.id) });
    for (let i = 0; i < N; i += 100) {
      await db.tx((tx) => appendToOutbox(tx, 'bench', Array.from({ length: Math.min(100, N - i) }, (_, j) => ({ type, subject: `s-${(i + j) % 50}`, data: { n: i + j } }))));
    }
    const t0 = performance.now();
    const relay = startOutboxRelay({ db, bus: producer, log });
    try {
      let relayed = NaN;
      const watchBacklog = (async () => {
        while ((await relay.backlog()) > 0) await new Promise((r) => setTimeout(r, 10));
        relayed = performance.now() - t0;
      })();
      await handled.wait(label);
      const total = performance.now() - t0;
      await watchBacklog;
      report(`${label}: outbox → relay (all published)`, N, relayed);
      report(`${label}: outbox → relay → consumer`, N, total);
    } finally {
      await relay.stop();
    }
  } finally {
    await consumer.close();
    await producer.close();
    await db.close();
    await tdb.drop();
  }
}

async function consumerThroughput(label: string, newBus: NewBus, handlerKind: 'trivial' | 'inbox') {
  const { db, tdb } = await serviceDb();
  const name = `bench.consume-${uid()}`;
  const type = `bench.Consumed${uid()}.v1`;
  const publisher = newBus('producer');
  try {
    await publisher.start();
    // Create the subscription, then leave: the events pile up on the bus with no consumer running.
    const first = newBus('consumer');
    await first.start();
    await first.subscribe({ name, types: [type], concurrency: CONCURRENCY, handler: async () => {} });
    await first.close();
    const events = Array.from({ length: N }, (_, n) => createEnvelope('bench', { type, subject: `s-${n % 50}`, data: { n } }));
    for (let i = 0; i < N; i += 500) await publisher.publishBatch(events.slice(i, i + 500));

    const handled = counter(N);
    const trivial: EventHandler = async (e) => handled.record(e.id);
    const inbox = idempotentHandler(db, name, async (e) => handled.record(e.id));
    const consumer = newBus('consumer');
    await consumer.start();
    try {
      const t0 = performance.now();
      await consumer.subscribe({ name, types: [type], concurrency: CONCURRENCY, handler: handlerKind === 'trivial' ? trivial : inbox });
      await handled.wait(label);
      report(`${label}: consumer, ${handlerKind} handler`, N, performance.now() - t0);
    } finally {
      await consumer.close();
    }
  } finally {
    await publisher.close();
    await db.close();
    await tdb.drop();
  }
}

async function natsReachable(): Promise<boolean> {
  try {
    const nc = await connect({ servers: natsUrl, timeout: 2000, maxReconnectAttempts: 0 });
    await nc.close();
    return true;
  } catch {
    return false;
  }
}

async function forEachAdapter(fn: (label: string, newBus: NewBus) => Promise<void>) {
  const busDb = await createTestDatabase('bench_bus');
  try {
    await fn('pg-boss', (service) => createPgBossBus({ url: busDb.url, service, log }));
  } finally {
    await busDb.drop();
  }
  if (!(await natsReachable())) {
    console.log(`NATS JetStream skipped: not reachable at ${natsUrl}`);
    return;
  }
  const streamPrefix = `BENCH${uid().toUpperCase()}`;
  try {
    await fn('NATS', (service) => createNatsBus({ url: natsUrl, service, log, streamPrefix }));
  } finally {
    const nc = await connect({ servers: natsUrl });
    const jsm = await nc.jetstreamManager();
    for (const s of [`${streamPrefix}_EVENTS`, `${streamPrefix}_DLQ`]) await jsm.streams.delete(s).catch(() => false);
    await nc.close();
  }
}

await forEachAdapter(async (label, newBus) => {
  await relayThroughput(label, newBus);
  await consumerThroughput(label, newBus, 'trivial');
  await consumerThroughput(label, newBus, 'inbox');
});
