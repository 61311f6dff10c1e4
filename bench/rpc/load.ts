// One load-generator process: a closed loop of `concurrency` callers against one server for warm-up + duration.
// Prints one line, `RESULT {json}`, with the measured figures. Separate from the server so they don't share an event loop.
import { createHistogram } from 'node:perf_hooks';
import { stackCaller } from './callers.ts';
import { CPU_PATH, cpuReport, type CpuReport } from './echo.ts';
import { isStack } from './stacks.ts';

const [stack, url, concurrencyArg, warmupArg, durationArg] = process.argv.slice(2);
if (!isStack(stack) || !url) throw new Error('usage: load.ts <stack> <url> <concurrency> <warmupS> <durationS>');
const concurrency = Number(concurrencyArg ?? 64);
const warmupMs = Number(warmupArg ?? 2) * 1000;
const durationMs = Number(durationArg ?? 10) * 1000;
const { call, close } = await stackCaller(stack, url, concurrency);

// CPU snapshots of both processes at the window's edges (one extra request each: noise, not load).
const serverCpu = async () => (await (await fetch(new URL(CPU_PATH, url))).json()) as CpuReport;
const snapshot = async () => ({ client: cpuReport(), server: await serverCpu() });
type Snapshot = Awaited<ReturnType<typeof snapshot>>;

// Microsecond resolution; the histogram keeps recording allocation-free so it doesn't disturb the measurement.
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
// Prefixed: a wired caller's own log lines (JSON) go to stdout too.
process.stdout.write(
  `RESULT ${JSON.stringify({
    stack,
    concurrency,
    seconds: durationMs / 1000,
    calls,
    errors,
    ...(firstError ? { firstError } : {}),
    throughput: calls / (durationMs / 1000),
    p50Ms: latency.percentile(50) / 1000,
    p99Ms: latency.percentile(99) / 1000,
    maxMs: latency.max / 1000,
    clientCpuUsPerCall: (until.client.user + until.client.system - from.client.user - from.client.system) / calls,
    serverCpuUsPerCall: (until.server.user + until.server.system - from.server.user - from.server.system) / calls,
    // The kernel's share (system time: sockets, epoll) is the same work for both stacks; the user share is the code.
    clientSysUsPerCall: (until.client.system - from.client.system) / calls,
    serverSysUsPerCall: (until.server.system - from.server.system) / calls,
    // Share of the window each side spent runnable but waiting for its core.
    clientWaited: (until.client.waitUs - from.client.waitUs) / (durationMs * 1000),
    serverWaited: (until.server.waitUs - from.server.waitUs) / (durationMs * 1000),
  })}\n`,
);
process.exit(0);
