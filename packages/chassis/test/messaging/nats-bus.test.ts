import { randomBytes } from 'node:crypto';
import { createNatsBus } from '../../src/messaging/nats-bus.ts';
import { busSuite } from './bus-suite.ts';
import { deleteNatsStreams, jetStreamReachable, NATS_MISSING, NATS_URL as url, testLog } from './helpers.ts';

const reachable = await jetStreamReachable();

busSuite({
  name: 'nats',
  ordering: 'per-type',
  ...(reachable ? {} : { skip: NATS_MISSING }),
  async environment() {
    // Streams of their own per test: the prefix names the streams and roots their subjects.
    const streamPrefix = `T${randomBytes(5).toString('hex').toUpperCase()}`;
    return {
      newBus: (service, options) => createNatsBus({ url, service, log: testLog, streamPrefix, ...options }),
      processEnv: { BUS_ADAPTER: 'nats', BUS_URL: url, BUS_STREAM_PREFIX: streamPrefix },
      cleanup: () => deleteNatsStreams(streamPrefix),
    };
  },
});
