// Cascade benchmark: chapter 6.2.2 of Microservices in Action (cascading failure), run twice — chassis resilience
// off (`resilience: false`, no load shedding), then on (the pipeline and protection startService wires) — against the
// same scenario. See docs/resilience.md, "The cascade, shown".
//
//   node --import tsx bench/cascade/run.ts [--rate=300] [--duration=40] [--fault-from=10] [--fault-to=25]
//                                          [--warmup=5] [--slo=1000] [--b-slots=8] [--b-service-ms=20] [--only=off|on]
//                                          [--tries=3] [--max-wait=50] [--sized] [--source] [--replot] [--out=DIR]
//
// Each run starts fresh processes (loopback only): holdings (A), prices (B), the edge, and an open-loop load
// process. At t = fault-from s B loses half its worker slots (its capacity halves); at t = fault-to s they come back.
// Every 250 ms this process samples B's and the edge's gauges. Per second of scheduled send time it reports:
// goodput of the healthy part (a 200 carrying A's data within the SLO), full answers (B's part fresh too), error
// rate, p99 latency, B's in-flight requests and the edge's outstanding calls to B. Writes bench/cascade/results.json
// and the charts docs/img/cascade-*.svg. Bounded: the load stops at t = duration, every request has a timeout, and
// every process is killed at the end.
//
// The processes run compiled (service.ts and load.ts bundled with the chassis by esbuild into
// node_modules/.cache/bench-cascade/, npm packages external), as production would; --source runs them under tsx.
// On a shared machine a run can be disturbed by neighbours (see `disturbance`): it is then repeated, and reported.
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { compileEntries } from '../../tools/cli/src/compile.ts';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Sample } from './load.ts';
import { CAPACITY_PATH, EDGE_OFF, EDGE_ON, EDGE_SIZED_PRICES, edgeResilience, runEnv, STATS_PATH, type EdgeMode, type EdgeStats, type PricesStats } from './services.ts';
import { lineChart, type Series } from './svg.ts';
import { positiveArg, stringArg } from '../lib/args.ts';
import { nodeFlags } from '../lib/node-flags.ts';

const RATE = positiveArg('rate', 300);
const DURATION_S = positiveArg('duration', 40);
const FAULT_FROM_S = positiveArg('fault-from', 10);
const FAULT_TO_S = positiveArg('fault-to', 25);
const WARMUP_S = positiveArg('warmup', 5);
const SLO_MS = positiveArg('slo', 1000);
const B_SLOTS = positiveArg('b-slots', 8);
const B_SERVICE_MS = positiveArg('b-service-ms', 20);
/** The load's own timeout (a browser or gateway giving up); longer than the off edge's worst case (4 × 5 s). */
const LOAD_TIMEOUT_MS = 25_000;
const SEED = 6_2_2;
/** A run whose baseline was disturbed by the machine (see `disturbance`) is repeated, up to this many tries. */
const TRIES = positiveArg('tries', 3);
/** A process of the run waiting for a CPU more than this % of any second (or half of it on average) = disturbed. */
const MAX_WAIT_PCT = positiveArg('max-wait', 50);
const only = stringArg('only') as EdgeMode | undefined;
/** --sized adds a third run: policies on with B's bulkhead sized to B's capacity (reported in the table, not charted). */
const modes: EdgeMode[] = only ? [only] : process.argv.includes('--sized') ? ['off', 'on', 'sized'] : ['off', 'on'];

const fromSource = process.argv.includes('--source');
const replot = process.argv.includes('--replot');
const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
/** Each entry's bundle, once compiled. */
const compiled: Record<string, string> = {};

/** Bundles the entry points with the workspace's own code (the chassis), as the bank runner does; npm packages stay external. */
async function compile(): Promise<void> {
  const bundles = await compileEntries({ service: here('./service.ts'), load: here('./load.ts') });
  Object.assign(compiled, bundles.files);
  process.once('exit', () => rmSync(bundles.dir, { recursive: true, force: true }));
}
const children = new Set<ChildProcess>();
const killAll = () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
};
process.once('exit', killAll);
process.once('SIGINT', () => {
  killAll();
  process.exit(130);
});

function start(script: 'service' | 'load', args: string[], env: Record<string, string> = {}): ChildProcess {
  const entry = fromSource ? ['--import', 'tsx', here(`./${script}.ts`)] : [compiled[script]!];
  const child = spawn(process.execPath, [...nodeFlags, ...entry, ...args], {
    env: { ...process.env, ...env },
    // An IPC channel, so a child notices (disconnect) if this process dies without killing it.
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** The first stdout line matching, while the rest of stdout keeps being drained (a full pipe would block the child). */
function firstLine(child: ChildProcess, match: (line: string) => boolean, timeoutMs: number): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer from child process')), timeoutMs);
    child.once('exit', (code) => reject(new Error(`child exited with ${code} before reporting`)));
    lines.on('line', (line) => {
      if (match(line)) {
        clearTimeout(timer);
        resolve(line);
      }
    });
  });
}

async function service(role: string, env: Record<string, string> = {}): Promise<{ url: string; child: ChildProcess }> {
  const child = start('service', [role], env);
  const line = await firstLine(child, (l) => l.startsWith('READY '), 30_000);
  return { url: line.slice('READY '.length).trim(), child };
}

async function getJson<T>(url: string): Promise<T | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return res.ok ? ((await res.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

interface Gauge {
  t: number;
  b?: PricesStats;
  edge?: EdgeStats;
  /** CPU seconds used so far by each process of the run (from /proc). */
  cpu: Record<Proc, number>;
  /** Seconds each process's main thread has waited for a CPU so far (run-queue delay, /proc/<pid>/schedstat). */
  wait: Record<Proc, number>;
}

type Proc = 'edge' | 'b' | 'a' | 'load';

/** Seconds the main thread of a process has spent runnable but waiting for a CPU (0 when unavailable). */
function runQueueSeconds(pid: number | undefined): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
  } catch {
    return 0;
  }
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat (0 when unavailable). */
function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

interface Second {
  t: number;
  sent: number;
  /** 200 with A's data within the SLO (full or degraded). */
  goodputPct: number;
  /** 200 with B's part fresh, within the SLO. */
  fullPct: number;
  /** 200 with B's part stale or unavailable (within the SLO or not). */
  degradedPct: number;
  errorPct: number;
  p50Ms: number;
  p99Ms: number;
  /** Max over the second's samples. */
  bInFlight: number | null;
  bQueued: number | null;
  /** Requests B received / served / refused as expired during this second. */
  bReceived: number | null;
  bServed: number | null;
  bExpired: number | null;
  edgeInFlight: number | null;
  edgePricesPending: number | null;
  edgeRssMb: number | null;
  breaker: string | null;
  /** Worst event-loop delay seen in the edge / B, and how late the load process sent (ms): starvation shows here. */
  edgeLoopDelayMs: number | null;
  bLoopDelayMs: number | null;
  /** Longest screen handler run at the edge (server-side latency), max over the second. */
  edgeHandlerMaxMs: number | null;
  loadSendLagMs: number | null;
  /** CPU used by each process during the second, % of one core. */
  cpuPct: Record<Proc, number | null>;
  /** Share of the second each process's main thread was ready to run but waited for a CPU (%): starvation. */
  waitPct: Record<Proc, number | null>;
}

interface RunResult {
  mode: EdgeMode;
  seconds: Second[];
  sent: number;
  bTotalReceived: number | null;
  /** Requests that got no 200, by status and problem code (or, without an answer, by error code). */
  failures: Record<string, number>;
  /** Set when the run was kept although the machine disturbed it (last try). */
  disturbed?: string;
}

/**
 * Why a run does not show the scenario but the machine's neighbours (this is a shared 2-core machine): the
 * load process itself could not keep its schedule, or the system was unhealthy before any fault was injected.
 */
function disturbance(r: RunResult): string | undefined {
  const lag = Math.max(...r.seconds.map((s) => s.loadSendLagMs ?? 0));
  if (lag > 500) return `the load process sent up to ${lag} ms late (starved by other processes)`;
  // Run-queue delay: the share of a second a process was ready to run while another process had the CPU.
  for (const p of ['edge', 'b', 'a', 'load'] as const) {
    const waits = r.seconds.map((s) => s.waitPct[p] ?? 0);
    const worst = Math.max(...waits);
    const avg = waits.reduce((a, b) => a + b, 0) / waits.length;
    if (worst > MAX_WAIT_PCT || avg > MAX_WAIT_PCT / 2) return `process ${p} waited for a CPU up to ${worst} % of a second (mean ${avg.toFixed(0)} %): other processes had the machine`;
  }
  const before = r.seconds.filter((s) => s.t < FAULT_FROM_S);
  const goodput = before.reduce((a, s) => a + s.goodputPct, 0) / before.length;
  if (goodput < 95) return `goodput before the fault was ${goodput.toFixed(1)} % (< 95 %): the baseline was not healthy`;
  return undefined;
}

const pct = (sorted: number[], p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN);

function aggregate(samples: Sample[], gauges: Gauge[], sendLagMs: number[]): Second[] {
  const seconds: Second[] = [];
  const firstOf = (s: number) => gauges.find((g) => g.t >= s * 1000 && g.b);
  for (let s = 0; s < DURATION_S; s++) {
    const xs = samples.filter((x) => Math.floor(x[0] / 1000) === s);
    const lat = xs.map((x) => x[1]).sort((a, b) => a - b);
    const n = xs.length || 1;
    const gs = gauges.filter((g) => Math.floor(g.t / 1000) === s);
    const max = (f: (g: Gauge) => number | undefined) => {
      const v = gs.map(f).filter((x): x is number => x !== undefined);
      return v.length ? Math.max(...v) : null;
    };
    const g0 = firstOf(s);
    const g1 = firstOf(s + 1);
    const delta = (k: 'received' | 'served' | 'expired') => (g0?.b && g1?.b ? g1.b[k] - g0.b[k] : null);
    const c0 = gauges.find((g) => g.t >= s * 1000);
    const c1 = gauges.find((g) => g.t >= (s + 1) * 1000);
    // A process that has exited reads as 0: no figure for that second.
    const rate = (k: 'cpu' | 'wait', p: Proc) => (c0 && c1 && c1.t > c0.t && c1[k][p] >= c0[k][p] ? Math.round((100 * 1000 * (c1[k][p] - c0[k][p])) / (c1.t - c0.t)) : null);
    const cpu = (p: Proc) => rate('cpu', p);
    const wait = (p: Proc) => rate('wait', p);
    const states = [...new Set(gs.map((g) => g.edge?.breaker).filter((x): x is string => x !== undefined))];
    seconds.push({
      t: s,
      sent: xs.length,
      goodputPct: (100 * xs.filter((x) => x[2] === 200 && x[1] <= SLO_MS).length) / n,
      fullPct: (100 * xs.filter((x) => x[2] === 200 && x[3] === 0 && x[1] <= SLO_MS).length) / n,
      degradedPct: (100 * xs.filter((x) => x[2] === 200 && (x[3] === 1 || x[3] === 2)).length) / n,
      errorPct: (100 * xs.filter((x) => x[2] !== 200).length) / n,
      p50Ms: pct(lat, 50),
      p99Ms: pct(lat, 99),
      bInFlight: max((g) => g.b?.inFlight),
      bQueued: max((g) => g.b?.queued),
      bReceived: delta('received'),
      bServed: delta('served'),
      bExpired: delta('expired'),
      edgeInFlight: max((g) => g.edge?.inFlight),
      edgePricesPending: max((g) => g.edge?.pricesPending),
      edgeRssMb: max((g) => g.edge?.rssMb),
      breaker: states.length ? states.join('/') : null,
      edgeLoopDelayMs: max((g) => g.edge?.loopDelayMs),
      edgeHandlerMaxMs: max((g) => g.edge?.handlerMaxMs),
      bLoopDelayMs: max((g) => g.b?.loopDelayMs),
      loadSendLagMs: sendLagMs[s] ?? null,
      cpuPct: { edge: cpu('edge'), b: cpu('b'), a: cpu('a'), load: cpu('load') },
      waitPct: { edge: wait('edge'), b: wait('b'), a: wait('a'), load: wait('load') },
    });
  }
  return seconds;
}

async function runOnce(mode: EdgeMode): Promise<RunResult> {
  // The off run is the unprotected baseline: no pipeline at the edge (its definition says `resilience: false`) and no
  // load shedding anywhere; the on runs get what startService gives every service.
  const env = runEnv(mode);
  const holdings = await service('holdings', env);
  const prices = await service('prices', { ...env, B_SLOTS: String(B_SLOTS), B_SERVICE_MS: String(B_SERVICE_MS) });
  const edge = await service(`edge-${mode}`, { ...env, HOLDINGS_URL: holdings.url, PRICES_URL: prices.url });
  const timers: NodeJS.Timeout[] = [];
  try {
    const t0 = Date.now() + 1_000 + WARMUP_S * 1000;
    const load = start('load', [edge.url, String(RATE), String(t0), String(WARMUP_S), String(DURATION_S), String(LOAD_TIMEOUT_MS), String(SEED)]);
    const result = firstLine(load, (l) => l.startsWith('{'), (WARMUP_S + DURATION_S) * 1000 + LOAD_TIMEOUT_MS + 30_000);

    const setSlots = (slots: number) =>
      fetch(`${prices.url}${CAPACITY_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ slots }) }).then(
        (r) => console.error(`[${mode}] t=${((Date.now() - t0) / 1000).toFixed(1)} s: B slots → ${slots} (${r.status})`),
      );
    timers.push(setTimeout(() => void setSlots(Math.max(1, Math.floor(B_SLOTS / 2))), t0 + FAULT_FROM_S * 1000 - Date.now()));
    timers.push(setTimeout(() => void setSlots(B_SLOTS), t0 + FAULT_TO_S * 1000 - Date.now()));

    // Gauges every 250 ms over the measured window (and one beyond its end, for the last second's counters).
    const gauges: Gauge[] = [];
    const sampling = (async () => {
      await new Promise((r) => setTimeout(r, t0 - Date.now()));
      for (let i = 0; i * 250 <= DURATION_S * 1000 + 250; i++) {
        const due = t0 + i * 250;
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
        const t = Date.now() - t0;
        const cpu = { edge: cpuSeconds(edge.child.pid), b: cpuSeconds(prices.child.pid), a: cpuSeconds(holdings.child.pid), load: cpuSeconds(load.pid) };
        const wait = { edge: runQueueSeconds(edge.child.pid), b: runQueueSeconds(prices.child.pid), a: runQueueSeconds(holdings.child.pid), load: runQueueSeconds(load.pid) };
        const [b, e] = await Promise.all([getJson<PricesStats>(`${prices.url}${STATS_PATH}`), getJson<EdgeStats>(`${edge.url}${STATS_PATH}`)]);
        gauges.push({ t, cpu, wait, ...(b ? { b } : {}), ...(e ? { edge: e } : {}) });
        if (i % 4 === 0 && Math.floor(t / 1000) % 5 === 0) {
          console.error(
            `[${mode}] t=${String(Math.round(t / 1000)).padStart(2)} s  B slots ${b?.slots ?? '?'} in flight ${b?.inFlight ?? '?'} | edge in flight ${e?.inFlight ?? '?'}, calls to B outstanding ${e?.pricesPending ?? '?'}${e?.breaker ? `, breaker ${e.breaker}` : ''}`,
          );
        }
      }
    })();

    const { sent, samples, sendLagMs, failures } = JSON.parse(await result) as { sent: number; samples: Sample[]; sendLagMs: number[]; failures: Record<string, number> };
    await sampling;
    const last = gauges.at(-1)?.b;
    return { mode, seconds: aggregate(samples, gauges, sendLagMs), sent, bTotalReceived: last ? last.received : null, failures };
  } finally {
    for (const t of timers) clearTimeout(t);
    for (const c of [edge.child, prices.child, holdings.child]) c.kill('SIGKILL');
  }
}

// ── summary ─────────────────────────────────────────────────────────────────────────────────────────────

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const inRange = (r: RunResult, from: number, to: number) => r.seconds.filter((s) => s.t >= from && s.t < to);

/** Seconds after the fault ended until `ok` holds for every remaining second (null: never within the run). */
function recovery(r: RunResult, ok: (s: Second) => boolean): number | null {
  const after = inRange(r, FAULT_TO_S, DURATION_S);
  for (let i = 0; i < after.length; i++) if (after.slice(i).every(ok)) return after[i]!.t - FAULT_TO_S;
  return null;
}

function summarize(r: RunResult) {
  const phase = (from: number, to: number) => {
    const ss = inRange(r, from, to);
    return {
      goodput: mean(ss.map((s) => s.goodputPct)),
      minGoodput: Math.min(...ss.map((s) => s.goodputPct)),
      full: mean(ss.map((s) => s.fullPct)),
      errors: mean(ss.map((s) => s.errorPct)),
      maxP99: Math.max(...ss.map((s) => s.p99Ms)),
    };
  };
  return {
    before: phase(0, FAULT_FROM_S),
    fault: phase(FAULT_FROM_S, FAULT_TO_S),
    after: phase(FAULT_TO_S, DURATION_S),
    goodputRecoveryS: recovery(r, (s) => s.goodputPct >= 90),
    fullRecoveryS: recovery(r, (s) => s.fullPct >= 90),
    p99RecoveryS: recovery(r, (s) => s.p99Ms <= SLO_MS),
    maxBInFlight: Math.max(...r.seconds.map((s) => s.bInFlight ?? 0)),
    maxPricesPending: Math.max(...r.seconds.map((s) => s.edgePricesPending ?? 0)),
    maxEdgeInFlight: Math.max(...r.seconds.map((s) => s.edgeInFlight ?? 0)),
    maxEdgeRssMb: Math.max(...r.seconds.map((s) => s.edgeRssMb ?? 0)),
    bReceivedPerSent: r.bTotalReceived !== null ? r.bTotalReceived / r.sent : NaN,
  };
}

// ── charts ──────────────────────────────────────────────────────────────────────────────────────────────

const COLORS: Record<EdgeMode, string> = { off: '#d62728', on: '#1f77b4', sized: '#2ca02c' };
const NAMES: Record<EdgeMode, string> = { off: 'policies off', on: 'policies on', sized: 'policies on, B bulkhead sized' };
const shade = { from: FAULT_FROM_S, to: FAULT_TO_S, label: 'B at half capacity' };

function charts(all: RunResult[]): Record<string, string> {
  // Two series per chart (off, on); the `sized` run, when there is one, is added dashed to the full-answers chart.
  const results = all.filter((r) => r.mode !== 'sized');
  const series = (f: (s: Second) => number | null, floor = 0, runs = results): Series[] =>
    runs.map((r) => ({ name: NAMES[r.mode], color: COLORS[r.mode], dashed: r.mode === 'sized', points: r.seconds.map((s): [number, number | null] => [s.t + 0.5, f(s) === null ? null : Math.max(floor, f(s)!)]) }));
  const maxOf = (f: (s: Second) => number | null) => Math.max(1, ...results.flatMap((r) => r.seconds.map((s) => f(s) ?? 0)));
  const niceMax = (v: number) => {
    const mag = 10 ** Math.floor(Math.log10(v));
    return ([1, 2, 2.5, 5, 10].map((m) => m * mag).find((c) => c >= v * 1.05) ?? 10 * mag);
  };
  const ms = (v: number) => (v >= 1000 ? `${v / 1000} s` : `${v} ms`);
  const base = { xMax: DURATION_S, shade };
  return {
    'cascade-goodput.svg': lineChart({
      ...base,
      title: `Goodput of the healthy part: A's data answered within ${ms(SLO_MS)} (% of requests sent)`,
      yLabel: '% of requests',
      yMax: 100,
      series: series((s) => s.goodputPct),
      reference: { y: 90, label: '90 %' },
    }),
    'cascade-full.svg': lineChart({
      ...base,
      title: `Full answers: A's data and a fresh B part within ${ms(SLO_MS)} (% of requests sent)`,
      yLabel: '% of requests',
      yMax: 100,
      series: series((s) => s.fullPct, 0, all),
    }),
    'cascade-errors.svg': lineChart({
      ...base,
      title: 'Error rate: answers other than 200, or none (% of requests sent)',
      yLabel: '% of requests',
      yMax: 100,
      series: series((s) => s.errorPct),
    }),
    'cascade-p99.svg': lineChart({
      ...base,
      title: 'p99 latency of the requests sent each second (log scale)',
      yLabel: 'p99 latency',
      yLog: true,
      yMin: 10,
      yMax: 100_000,
      yFormat: ms,
      series: series((s) => s.p99Ms, 10),
      reference: { y: SLO_MS, label: `SLO ${ms(SLO_MS)}` },
    }),
    'cascade-b-inflight.svg': lineChart({
      ...base,
      title: 'Requests in flight at B (served or queued for a slot), max/s',
      yLabel: 'requests',
      yMax: niceMax(maxOf((s) => s.bInFlight)),
      series: series((s) => s.bInFlight),
    }),
    'cascade-b-backlog.svg': lineChart({
      ...base,
      title: 'Calls to B outstanding at the edge (queued, in flight, retrying), max/s',
      yLabel: 'calls',
      yMax: niceMax(maxOf((s) => s.edgePricesPending)),
      series: series((s) => s.edgePricesPending),
    }),
  };
}

// ── main ────────────────────────────────────────────────────────────────────────────────────────────────

type Meta = { date: string; machine: string; rate: number; durationS: number; fault: number[]; sloMs: number; b: { slots: number; serviceMs: number; capacityPerS: number } } & Record<string, unknown>;

// --out=DIR: results.json and the charts go there instead of bench/cascade/ and docs/img/ (a trial run must not
// replace the charts the write-up shows).
const outArg = stringArg('out');
const outFile = outArg ? path.resolve(outArg, 'results.json') : here('./results.json');
const imgDir = outArg ? `${path.resolve(outArg)}/` : fileURLToPath(new URL('../../docs/img/', import.meta.url));
if (outArg) mkdirSync(outArg, { recursive: true });
let meta: Meta;
let results: RunResult[] = [];
let discarded: { mode: EdgeMode; reason: string }[] = [];
if (replot) {
  // Charts and tables again from the last results, without running (e.g. after changing a chart).
  ({ meta, discarded, results } = JSON.parse(readFileSync(outFile, 'utf8')) as { meta: Meta; discarded: typeof discarded; results: RunResult[] });
  const same = meta.rate === RATE && meta.durationS === DURATION_S && meta.fault[0] === FAULT_FROM_S && meta.fault[1] === FAULT_TO_S && meta.sloMs === SLO_MS;
  if (!same) throw new Error('--replot: pass the options the results were made with');
} else {
  if (!fromSource) await compile();
  const startedAt = new Date();
  const load1 = loadavg()[0]!;
  for (const mode of modes) {
    for (let attempt = 1; ; attempt++) {
      console.error(`── run: policies ${mode}${attempt > 1 ? ` (try ${attempt})` : ''} ──`);
      const r = await runOnce(mode);
      const reason = disturbance(r);
      if (!reason || attempt >= TRIES) {
        if (reason) r.disturbed = reason;
        results.push(r);
        break;
      }
      console.error(`[${mode}] discarded: ${reason}`);
      discarded.push({ mode, reason });
    }
  }
  const load2 = loadavg()[0]!;
  meta = {
    date: startedAt.toISOString(),
    machine: `${availableParallelism()} CPUs, node ${process.version}, load average ${load1.toFixed(1)} → ${load2.toFixed(1)}`,
    rate: RATE,
    durationS: DURATION_S,
    fault: [FAULT_FROM_S, FAULT_TO_S],
    sloMs: SLO_MS,
    b: { slots: B_SLOTS, serviceMs: B_SERVICE_MS, capacityPerS: (B_SLOTS * 1000) / B_SERVICE_MS },
    edgeOff: { ...EDGE_OFF, resilience: false, env: runEnv('off') },
    edgeOn: { ...EDGE_ON, resilience: edgeResilience('on') },
    edgeSizedPrices: EDGE_SIZED_PRICES,
  };
  writeFileSync(outFile, `${JSON.stringify({ meta, discarded, results }, null, 1)}\n`);
}
const charted = results.filter((r) => r.mode !== 'sized');
if (charted.length === 2) {
  mkdirSync(imgDir, { recursive: true });
  for (const [name, svg] of Object.entries(charts(results))) writeFileSync(`${imgDir}${name}`, svg);
}

const f = (v: number | null, d = 0) => (v === null || !Number.isFinite(v) ? '–' : v.toFixed(d));
console.log(`\n${meta.date} · ${meta.machine} · ${RATE} req/s open loop for ${DURATION_S} s · B ${B_SLOTS} slots × ${B_SERVICE_MS} ms = ${meta.b.capacityPerS} req/s, halved t=${FAULT_FROM_S}–${FAULT_TO_S} s · SLO ${SLO_MS} ms\n`);
console.log('| run | goodput before / during / after fault | lowest 1-s goodput in fault | full answers before / during / after | errors during / after | worst p99 during / after | goodput ≥ 90 % again after | full ≥ 90 % again after | p99 ≤ SLO again after | max calls to B outstanding | max edge in flight | B requests per request sent |');
console.log('|---|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|');
for (const r of results) {
  const s = summarize(r);
  const after = (v: number | null) => (v === null ? 'not within the run' : `${v} s`);
  console.log(
    `| ${NAMES[r.mode]} | ${f(s.before.goodput, 1)} / ${f(s.fault.goodput, 1)} / ${f(s.after.goodput, 1)} % | ${f(s.fault.minGoodput, 1)} % | ${f(s.before.full, 1)} / ${f(s.fault.full, 1)} / ${f(s.after.full, 1)} % | ${f(s.fault.errors, 1)} / ${f(s.after.errors, 1)} % | ${f(s.fault.maxP99)} / ${f(s.after.maxP99)} ms | ${after(s.goodputRecoveryS)} | ${after(s.fullRecoveryS)} | ${after(s.p99RecoveryS)} | ${s.maxPricesPending} | ${s.maxEdgeInFlight} | ${f(s.bReceivedPerSent, 2)} |`,
  );
}
for (const d of discarded) console.log(`\ndiscarded a ${NAMES[d.mode]} run: ${d.reason}`);
for (const r of results) if (r.disturbed) console.log(`\nWARNING: the ${NAMES[r.mode]} run kept after ${TRIES} tries was disturbed: ${r.disturbed}`);
for (const r of results) if (Object.keys(r.failures).length) console.log(`\n${NAMES[r.mode]}: requests without a 200, by cause: ${JSON.stringify(r.failures)}`);
console.log('\nper second (t: goodput% full% err% p99ms | B in flight, B recv/served/expired | edge in flight, calls to B outstanding, breaker | edge handler max ms | loop delay edge/B, load send lag ms | CPU % edge/B/A/load | waiting for a CPU % edge/B/A/load):');
for (const r of results) {
  console.log(`\n${NAMES[r.mode]}:`);
  for (const s of r.seconds) {
    console.log(
      `  ${String(s.t).padStart(2)}: ${f(s.goodputPct).padStart(3)} ${f(s.fullPct).padStart(3)} ${f(s.errorPct).padStart(3)} ${f(s.p99Ms).padStart(6)} | ${f(s.bInFlight).padStart(3)}, ${f(s.bReceived)}/${f(s.bServed)}/${f(s.bExpired)} | ${f(s.edgeInFlight)}, ${f(s.edgePricesPending)}${s.breaker ? `, ${s.breaker}` : ''} | ${f(s.edgeHandlerMaxMs)} | ${f(s.edgeLoopDelayMs)}/${f(s.bLoopDelayMs)}, ${f(s.loadSendLagMs)} | ${f(s.cpuPct.edge)}/${f(s.cpuPct.b)}/${f(s.cpuPct.a)}/${f(s.cpuPct.load)} | ${f(s.waitPct.edge)}/${f(s.waitPct.b)}/${f(s.waitPct.a)}/${f(s.waitPct.load)}`,
    );
  }
}
console.log(`\nwrote ${outFile}${charted.length === 2 ? ` and ${imgDir}cascade-*.svg` : ''}`);
process.exit(0);
