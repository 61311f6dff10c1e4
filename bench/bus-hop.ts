// Publish → handle hop latency through each bus adapter, with publisher and consumer as separate bus instances
// (as separate processes would be). One event in flight at a time, so the figure is the hop, not queueing.
//   node --import tsx bench/bus-hop.ts [events]     (NATS_URL, default nats://127.0.0.1:4222; skipped if unreachable)
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { connect } from 'nats';
import { createLogger } from '../packages/chassis/src/log/logger.ts';
import type { Bus } from '../packages/chassis/src/messaging/bus.ts';
import { createEnvelope } from '../packages/chassis/src/messaging/envelope.ts';
import { createNatsBus } from '../packages/chassis/src/messaging/nats-bus.ts';
import { createPgBossBus } from '../packages/chassis/src/messaging/pgboss-bus.ts';
import { createTestDatabase } from '../packages/chassis/src/testing/postgres.ts';

const events = Number(process.argv[2] ?? 300);
const warmup = 20;
const log = createLogger({ service: 'bench', level: 'warn' });
const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

async function measure(label: string, publisher: Bus, consumer: Bus, count: number): Promise<void> {
  await publisher.start();
  await consumer.start();
  const type = `bench.Hop${randomBytes(3).toString('hex')}.v1`;
  const arrived = new Map<string, number>();
  let notify: (() => void) | undefined;
  await consumer.subscribe({
    name: `bench.hop-${randomBytes(3).toString('hex')}`,
    types: [type],
    handler: async (e) => {
      arrived.set(e.id, performance.now());
      notify?.();
    },
  });
  const hops: number[] = [];
  for (let i = 0; i < warmup + count; i++) {
    const e = createEnvelope('bench', { type, subject: 'hop', data: { i } });
    const handled = new Promise<void>((resolve) => (notify = () => arrived.has(e.id) && resolve()));
    const t0 = performance.now();
    await publisher.publish(e);
    await Promise.race([handled, new Promise((_, reject) => setTimeout(() => reject(new Error(`${label}: event ${i} not handled in 30 s`)), 30_000))]);
    if (i >= warmup) hops.push((arrived.get(e.id) ?? NaN) - t0);
  }
  await consumer.close();
  await publisher.close();
  hops.sort((a, b) => a - b);
  console.log(`${label.padEnd(34)} n=${String(count).padEnd(5)} p50=${pct(hops, 50).toFixed(2)} ms  p99=${pct(hops, 99).toFixed(2)} ms  max=${hops.at(-1)?.toFixed(2)} ms`);
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

const db = await createTestDatabase('bench_bus');
try {
  const pgboss = (service: string, extra: { wakeUps?: boolean; pollingIntervalSeconds?: number } = {}) =>
    createPgBossBus({ url: db.url, service, log, ...extra });
  await measure('pg-boss + NOTIFY wake-up', pgboss('pub'), pgboss('sub'), events);
  // The baseline the wake-up replaces: pg-boss's own polling, at its minimum interval. Fewer events: ~0.25 s each.
  await measure('pg-boss polling only (0.5 s)', pgboss('pub', { wakeUps: false }), pgboss('sub', { wakeUps: false, pollingIntervalSeconds: 0.5 }), Math.min(events, 40));
} finally {
  await db.drop();
}

if (await natsReachable()) {
  const streamPrefix = `BENCH${randomBytes(3).toString('hex').toUpperCase()}`;
  try {
    await measure('NATS JetStream', createNatsBus({ url: natsUrl, service: 'pub', log, streamPrefix }), createNatsBus({ url: natsUrl, service: 'sub', log, streamPrefix }), events);
  } finally {
    const nc = await connect({ servers: natsUrl });
    const jsm = await nc.jetstreamManager();
    for (const s of [`${streamPrefix}_EVENTS`, `${streamPrefix}_DLQ`]) await jsm.streams.delete(s).catch(() => false);
    await nc.close();
  }
} else {
  console.log(`NATS JetStream                     skipped: not reachable at ${natsUrl}`);
}
