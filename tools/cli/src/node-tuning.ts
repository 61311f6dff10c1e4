/**
 * The Node.js flags every bank service runs with: `npm start` (bank.ts) passes them as NODE_OPTIONS, the image sets
 * the same (Dockerfile), and the benchmarks give them to every process they start, so what they measure is what runs.
 *
 * A larger young generation than V8's default (16 MB semi-spaces): every service allocates briskly per request and
 * event (JSON, rows, promises, spans), and with small semi-spaces what is still alive a few milliseconds later (a
 * span in the tracing ring, a request waiting on its database) is copied by each scavenge and then promoted to the
 * old generation, to be marked and swept there. With 64 MB most of it dies young. The cost is memory: up to three
 * times the semi-space per process (192 MB), which a laptop running seven services can spare.
 */
export const NODE_TUNING = '--max-semi-space-size=64';
