import { randomBytes } from 'node:crypto';
import { connect } from 'nats';
import { createNatsBus } from '../../src/messaging/nats-bus.ts';
import { busSuite } from './bus-suite.ts';
import { testLog } from './helpers.ts';

const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

async function jetStreamReachable(): Promise<boolean> {
  try {
    const nc = await connect({ servers: url, timeout: 2000, maxReconnectAttempts: 0 });
    try {
      await (await nc.jetstreamManager()).getAccountInfo();
      return true;
    } finally {
      await nc.close();
    }
  } catch {
    return false;
  }
}

const reachable = await jetStreamReachable();

busSuite({
  name: 'nats',
  ordering: 'per-type',
  ...(reachable ? {} : { skip: 'needs NATS JetStream at 127.0.0.1:4222 (or set NATS_URL)' }),
  async environment() {
    // Streams of their own per test: the prefix names the streams and roots their subjects.
    const streamPrefix = `T${randomBytes(5).toString('hex').toUpperCase()}`;
    return {
      newBus: (service) => createNatsBus({ url, service, log: testLog, streamPrefix }),
      processEnv: { BUS_ADAPTER: 'nats', BUS_URL: url, BUS_STREAM_PREFIX: streamPrefix },
      async cleanup() {
        const nc = await connect({ servers: url });
        try {
          const jsm = await nc.jetstreamManager();
          for (const s of [`${streamPrefix}_EVENTS`, `${streamPrefix}_DLQ`]) await jsm.streams.delete(s).catch(() => false);
        } finally {
          await nc.close();
        }
      },
    };
  },
});
