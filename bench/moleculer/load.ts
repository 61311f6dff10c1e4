// One load process: a closed loop of `concurrency` callers against one server, warm-up then the measured window.
// Prints one line, `RESULT {json}`, with the figures. Separate from the server, so they never share an event loop.
//
//   load.mjs <variant> <target> <concurrency> <warmupS> <durationS> [tcp|nats] [namespace]
//
// Variants:
//   fastify-bare      an undici Pool (`pool.request` + `body.json()`, the chassis client's 32 connections) against
//                     plain fastify with the same route and nothing validated: the floor of the stack the chassis is
//                     built on (bench/rpc's `bare`), so what no chassis on fastify + undici can beat
//   chassis-bare      the chassis core: a startService caller with every switch off (`resilience: false`, metrics
//                     and tracing off), calls outside any work context, against the echo service likewise — what
//                     bench/rpc's `chassis` stack measures
//   chassis-full      the chassis as a bank service runs, both sides started by startService with the defaults: the
//                     caller's client behind the pipeline the chassis wires (bulkhead, retry + budget, breaker,
//                     attempt timeout) and its metrics and client spans; each call inside a traced unit of work with
//                     a 5 s deadline (deadline propagation on, 100 % sampled); the callee with load shedding, metrics
//                     and tracing (in-memory ring) on
//   chassis-full-socket  chassis-full with the callee also serving on a Unix domain socket (SOCKET_PATH) and the caller
//                     calling through it (ECHO_URL=unix:<path>), as the services `npm start` runs on one machine do
//   moleculer-full    broker.call over the transporter, with circuit breaker, retry, timeout, bulkhead, metrics,
//                     tracing on (echo.ts: moleculerFeatures)
//   moleculer-bare    broker.call over the same transporter, all of those off
import { createHistogram } from 'node:perf_hooks';
import { ServiceBroker } from 'moleculer';
import { wiredCaller, workRunner } from '../lib/chassis.ts';
import { stackCaller } from '../rpc/callers.ts';
import { brokerOptions, CHASSIS_FULL, CPU_PATH, echoContract, processStats, VARIANTS, type ProcessStats, type Transport } from './echo.ts';

const [variantArg, target, concurrencyArg, warmupArg, durationArg, transportArg, namespace] = process.argv.slice(2);
const variant = VARIANTS.find((v) => v === variantArg);
if (!variant || !target) throw new Error('usage: load.ts <variant> <target> <concurrency> <warmupS> <durationS> [tcp|nats] [namespace]');
const concurrency = Number(concurrencyArg ?? 64);
const warmupMs = Number(warmupArg ?? 2) * 1000;
const durationMs = Number(durationArg ?? 10) * 1000;

let call: (n: number, id: string) => Promise<void>;
let serverStats: () => Promise<ProcessStats>;
let close: () => Promise<unknown>;
// chassis-full-socket's target is `unix:<path> <TCP URL>`: calls go through the socket, the CPU report over TCP.
const [callTarget, reportTarget = callTarget] = target.split(' ') as [string, string?];
/** An HTTP server's own CPU report (fastify-bare and the chassis callee serve it alike). */
const httpServerStats = async () => (await (await fetch(new URL(CPU_PATH, reportTarget))).json()) as ProcessStats;
if (variant === 'fastify-bare') {
  // bench/rpc's `bare` caller: an undici Pool with the chassis client's connections.
  ({ call, close } = await stackCaller('bare', target, concurrency));
  serverStats = httpServerStats;
} else if (variant.startsWith('chassis')) {
  const full = variant !== 'chassis-bare';
  const caller = await wiredCaller(echoContract, callTarget, full ? CHASSIS_FULL : {});
  const inWork = workRunner(full ? 'traced' : 'none', concurrency, caller.tracer);
  const echo = async (id: string) => {
    const res = await caller.client.echo({ params: { id } });
    if (res.body.id !== id) throw new Error('wrong echo');
  };
  call = full ? (n, id) => inWork(n, () => echo(id)) : (_n, id) => echo(id);
  serverStats = httpServerStats;
  close = () => caller.stop();
} else {
  if (transportArg !== 'tcp' && transportArg !== 'nats') throw new Error('moleculer variants need a transport');
  const transport: Transport = transportArg;
  const [calleeID, calleeAddress] = target.split('@');
  const broker = new ServiceBroker(
    await brokerOptions({
      nodeID: `caller-${process.pid}`,
      namespace: namespace ?? 'bench',
      transport,
      features: variant === 'moleculer-full',
      ...(transport === 'tcp' ? { peers: [`${calleeAddress}/${calleeID}`] } : {}),
    }),
  );
  await broker.start();
  await broker.waitForServices(['echo'], 30_000);
  call = async (_n, id) => {
    const res = (await broker.call('echo.echo', { id })) as { id: string };
    if (res.id !== id) throw new Error('wrong echo');
  };
  serverStats = async () => (await broker.call('echo.cpu', {})) as ProcessStats;
  close = () => broker.stop();
}

// CPU and run-queue snapshots of both processes at the window's edges (one extra call each: noise, not load).
const snapshot = async () => ({ client: processStats(), server: await serverStats(), at: performance.now() });
type Snapshot = Awaited<ReturnType<typeof snapshot>>;

const latency = createHistogram({ lowest: 1, highest: 60_000_000, figures: 3 });
let calls = 0;
let errors = 0;
let firstError: string | undefined;
const start = performance.now();
const measureFrom = start + warmupMs;
const measureUntil = measureFrom + durationMs;
const windowStart = new Promise<Snapshot>((resolve) => setTimeout(() => resolve(snapshot()), warmupMs));
const windowEnd = new Promise<Snapshot>((resolve) => setTimeout(() => resolve(snapshot()), warmupMs + durationMs));

async function caller(n: number) {
  let i = 0;
  for (;;) {
    const t0 = performance.now();
    if (t0 >= measureUntil) return;
    try {
      await call(n, `${n}-${i++}`);
    } catch (err) {
      errors++;
      firstError ??= (err as Error).message;
      continue;
    }
    const t1 = performance.now();
    // Only calls that both started and finished inside the window count: a clean closed-loop sample.
    if (t0 >= measureFrom && t1 <= measureUntil) {
      calls++;
      latency.record(Math.max(1, Math.round((t1 - t0) * 1000)));
    }
  }
}

await Promise.all(Array.from({ length: concurrency }, (_, n) => caller(n)));
const [from, until] = await Promise.all([windowStart, windowEnd]);
await close();
// Prefixed: a chassis caller's own log lines (JSON) go to stdout too.
process.stdout.write(
  `RESULT ${JSON.stringify({
    variant,
    transport: variant.startsWith('moleculer') ? transportArg : 'http',
    concurrency,
    seconds: durationMs / 1000,
    calls,
    errors,
    ...(firstError ? { firstError } : {}),
    throughput: calls / (durationMs / 1000),
    p50Ms: latency.percentile(50) / 1000,
    p99Ms: latency.percentile(99) / 1000,
    maxMs: latency.max / 1000,
    clientCpuUsPerCall: (until.client.cpuUs - from.client.cpuUs) / calls,
    serverCpuUsPerCall: (until.server.cpuUs - from.server.cpuUs) / calls,
    // Share of the window each side's main thread spent waiting for a CPU taken by another process.
    clientWaitPct: (100 * (until.client.runQueueNs - from.client.runQueueNs)) / 1e6 / (until.at - from.at),
    serverWaitPct: (100 * (until.server.runQueueNs - from.server.runQueueNs)) / 1e6 / (until.at - from.at),
  })}\n`,
);
process.exit(0);
