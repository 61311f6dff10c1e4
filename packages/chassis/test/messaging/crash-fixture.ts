// A bus consumer process for the crash tests (bus-suite.ts): it subscribes, reports each delivery on stdout as a
// JSON line, and never finishes a handler, so the test can SIGKILL it mid-handling as a real crash would.
// Configured through the environment: BUS_ADAPTER (pg-boss | nats), BUS_URL, BUS_STREAM_PREFIX (nats),
// SUBSCRIPTION, EVENT_TYPE, LEASE_SECONDS, MAX_ATTEMPTS.
import type { Bus } from '../../src/messaging/bus.ts';
import { createNatsBus } from '../../src/messaging/nats-bus.ts';
import { createPgBossBus } from '../../src/messaging/pgboss-bus.ts';
import { testLog } from './helpers.ts';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`crash-fixture: ${name} is not set`);
  return value;
};

const url = env('BUS_URL');
const bus: Bus =
  env('BUS_ADAPTER') === 'nats'
    ? createNatsBus({ url, service: 'crashing', log: testLog, streamPrefix: env('BUS_STREAM_PREFIX') })
    : createPgBossBus({ url, service: 'crashing', log: testLog });

await bus.start();
await bus.subscribe({
  name: env('SUBSCRIPTION'),
  types: [env('EVENT_TYPE')],
  leaseSeconds: Number(env('LEASE_SECONDS')),
  maxAttempts: Number(env('MAX_ATTEMPTS')),
  concurrency: 1,
  handler: (event, delivery) => {
    process.stdout.write(`${JSON.stringify({ handling: event.id, attempt: delivery.attempt })}\n`);
    return new Promise<void>(() => {});
  },
});
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
