// Chassis vs Moleculer: one trivial request-response call, same concurrency, same run.
//
//   node --import tsx bench/moleculer/run.ts [--duration=10] [--warmup=2] [--concurrency=64] [--rounds=2]
//                                            [--transport=tcp,nats|tcp|nats] [--variants=a,b,…] [--source]
//                                            [--max-wait=15] [--tries=3] [--at=HEAD]
//
// Variants (load.ts): fastify-bare (plain fastify + an undici Pool: the floor of the chassis' own stack),
// chassis-bare (the chassis core: every switch off), chassis-full (startService defaults on both
// sides: the wired pipeline, load shedding, metrics, tracing 100 %, calls in a traced unit of work with a deadline),
// chassis-full-socket (the same, calling through the callee's Unix socket instead of TCP loopback),
// moleculer-full (breaker, retry, timeout, bulkhead, metrics, tracing on), moleculer-bare (all off).
// Every server (the two chassis services, one Moleculer callee broker per transport and feature set) runs in its own
// process pinned to CPU 0; every measurement is a fresh caller process pinned to CPU 1 (`taskset`), so caller and
// callee never share an event loop or a core. Closed loop, `concurrency` calls in flight, warm-up then the measured
// window; the variants alternate, in reverse order every other round, so drift on a shared machine hits all alike.
// Loopback only: HTTP on 127.0.0.1; Moleculer TCP with UDP discovery off and static 127.0.0.1 URLs, or NATS at
// 127.0.0.1:4222 under a namespace of this run. Everything stops by itself.
//
// Everything runs compiled, as production would: server.ts and load.ts with the chassis sources they import are
// bundled by esbuild into node_modules/.cache/bench-moleculer/ (npm packages — fastify, undici, zod, pino,
// moleculer — stay external); --source runs the .ts files under tsx instead.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { bundle, describeSources } from '../lib/bundle.ts';
import { describeNodeFlags, nodeFlags } from '../lib/node-flags.ts';
import { availableParallelism, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { VARIANTS, type Transport, type Variant } from './echo.ts';
import { listArg, positiveArg, stringArg } from '../lib/args.ts';

const duration = positiveArg('duration', 10);
const warmup = positiveArg('warmup', 2);
const concurrency = positiveArg('concurrency', 64);
const rounds = positiveArg('rounds', 2);
// Both by default: which transporter is Moleculer's fastest depends on the features (bare: TCP; with metrics on, the
// TCP transporter's caller pays far more per call than NATS's), so the run measures both and judges against the faster.
const transports = listArg('transport', 'tcp,nats') as Transport[];
const variants = listArg('variants', 'fastify-bare,chassis-bare,chassis-full,chassis-full-socket,moleculer-full,moleculer-bare') as Variant[];
for (const v of variants) if (!(VARIANTS as readonly string[]).includes(v)) throw new Error(`unknown variant ${v}; known: ${VARIANTS.join(', ')}`);
const fromSource = process.argv.includes('--source');
/**
 * A measurement whose caller or callee spent more than this share of the window waiting for a CPU that another
 * process had (run-queue delay) is disturbed by the neighbours on this shared machine: it is repeated, up to
 * --tries times, and the least disturbed one is kept (flagged if still over).
 */
const maxWaitPct = positiveArg('max-wait', 15);
const tries = positiveArg('tries', 3);
/** Issue 3: the chassis with its full pipeline ≥ 1.5× Moleculer with its features on, at a lower p99. */
const MOLECULER_BUDGET = 1.5;

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
/** Each entry's bundle, once compiled. */
const compiled: Record<string, string> = {};
const hasTaskset = spawnSync('taskset', ['--version']).status === 0 && availableParallelism() >= 2;
const namespace = `bench-moleculer-${process.pid}`;
/** --at=<git revision>: compile the sources as committed there (HEAD: leave others' uncommitted work out). */
const at = stringArg('at');
if (at && fromSource) throw new Error('--at compiles; it does not go with --source');
const commit = describeSources(at);

/** Bundles the entry points with the workspace's own code (the chassis), as the bank runner does; npm packages stay external. */
async function compile(): Promise<void> {
  const bundles = await bundle({ server: here('./server.ts'), load: here('./load.ts') }, at ? { at } : {});
  Object.assign(compiled, bundles.files);
  process.once('exit', () => rmSync(bundles.dir, { recursive: true, force: true }));
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function node(cpu: number, script: 'server' | 'load', args: string[]): ChildProcess {
  const entry = fromSource ? ['--import', 'tsx', here(`./${script}.ts`)] : [compiled[script]!];
  const [cmd, argv] = hasTaskset ? ['taskset', ['-c', String(cpu), process.execPath, ...nodeFlags, ...entry, ...args]] : [process.execPath, [...nodeFlags, ...entry, ...args]];
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** The first stdout line matching; the rest of stdout keeps being drained. */
function firstLine(child: ChildProcess, match: (line: string) => boolean, timeoutMs: number): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('child process did not report in time'));
    }, timeoutMs);
    child.once('exit', (code) => reject(new Error(`process exited with ${code} before reporting`)));
    lines.on('line', (line) => {
      if (match(line)) {
        clearTimeout(timer);
        resolve(line);
      }
    });
  });
}

interface Server {
  target: string;
  ns: string;
  stop(): Promise<void>;
}

async function startServer(args: string[], ns = ''): Promise<Server> {
  const child = node(0, 'server', args);
  const line = await firstLine(child, (l) => l.startsWith('READY '), 60_000);
  return {
    target: line.slice('READY '.length).trim(),
    ns,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

interface Result {
  variant: Variant;
  transport: string;
  calls: number;
  errors: number;
  firstError?: string;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  clientCpuUsPerCall: number;
  serverCpuUsPerCall: number;
  clientWaitPct: number;
  serverWaitPct: number;
  /** Kept although over --max-wait after --tries measurements. */
  disturbed?: boolean;
}

const waitOf = (r: Result) => Math.max(r.clientWaitPct, r.serverWaitPct);

/** A measured configuration: a variant, and for Moleculer the transport. */
interface Config {
  key: string;
  variant: Variant;
  transport?: Transport;
}

const configs: Config[] = variants.flatMap((variant): Config[] =>
  variant.startsWith('moleculer') ? transports.map((transport) => ({ key: `${variant} (${transport})`, variant, transport })) : [{ key: variant, variant }],
);

async function measure(config: Config, server: Server): Promise<Result> {
  const child = node(1, 'load', [config.variant, server.target, String(concurrency), String(warmup), String(duration), ...(config.transport ? [config.transport, server.ns] : [])]);
  const line = await firstLine(child, (l) => l.startsWith('RESULT '), (warmup + duration) * 1000 + 60_000);
  await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once('exit', resolve)));
  return JSON.parse(line.slice('RESULT '.length)) as Result;
}

if (!fromSource) await compile();
const startedAt = new Date();
const load = () => loadavg().map((v) => v.toFixed(1)).join(' ');
const loadBefore = load();
const servers = new Map<string, Server>();
try {
  for (const c of configs) {
    if (!c.transport) {
      servers.set(c.variant, await startServer([c.variant]));
      continue;
    }
    const kind = c.variant;
    const id = `${kind}/${c.transport}`;
    const ns = `${namespace}-${c.transport}-${kind === 'moleculer-full' ? 'full' : 'bare'}`;
    if (!servers.has(id)) servers.set(id, await startServer([kind, c.transport, ns], ns));
  }
} catch (err) {
  await Promise.all([...servers.values()].map((s) => s.stop()));
  throw err;
}
const serverFor = (c: Config) => servers.get(c.transport ? `${c.variant}/${c.transport}` : c.variant)!;

const results = new Map<string, Result[]>();
try {
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? configs : [...configs].reverse();
    for (const c of order) {
      let kept: Result | undefined;
      for (let attempt = 1; attempt <= tries; attempt++) {
        const r = await measure(c, serverFor(c));
        const disturbed = waitOf(r) > maxWaitPct;
        console.error(
          `round ${round} ${c.key.padEnd(24)} ${r.throughput.toFixed(0).padStart(6)} calls/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  ` +
            `CPU/call caller ${r.clientCpuUsPerCall.toFixed(1)} µs callee ${r.serverCpuUsPerCall.toFixed(1)} µs  ` +
            `waiting for a CPU caller ${r.clientWaitPct.toFixed(0)} % callee ${r.serverWaitPct.toFixed(0)} %  load ${load()}  errors ${r.errors}${r.firstError ? ` (${r.firstError})` : ''}` +
            `${disturbed ? (attempt < tries ? '  → disturbed, repeating' : '  → disturbed') : ''}`,
        );
        if (!kept || waitOf(r) < waitOf(kept)) kept = r;
        if (!disturbed) break;
      }
      if (waitOf(kept!) > maxWaitPct) kept!.disturbed = true;
      results.set(c.key, [...(results.get(c.key) ?? []), kept!]);
    }
  }
} finally {
  await Promise.all([...servers.values()].map((s) => s.stop()));
}
const loadAfter = load();
const features = process.env.MOLECULER_FEATURES ? ` · MOLECULER_FEATURES=${process.env.MOLECULER_FEATURES}` : '';

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const summary = (key: string) => {
  const rs = results.get(key) ?? [];
  return {
    throughput: mean(rs.map((r) => r.throughput)),
    p50: mean(rs.map((r) => r.p50Ms)),
    p99: mean(rs.map((r) => r.p99Ms)),
    perRound: rs.map((r) => r.throughput),
    // Interference from other processes only adds CPU time: the lowest round is the best estimate of the code's own cost.
    clientCpu: Math.min(...rs.map((r) => r.clientCpuUsPerCall)),
    serverCpu: Math.min(...rs.map((r) => r.serverCpuUsPerCall)),
    wait: Math.max(...rs.map(waitOf)),
    disturbed: rs.some((r) => r.disturbed),
    errors: rs.reduce((a, r) => a + r.errors, 0),
  };
};
const sums = new Map(configs.map((c) => [c.key, summary(c.key)]));

const f0 = (v: number) => v.toFixed(0).replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
console.log(`
${startedAt.toISOString()} · commit ${commit} · ${availableParallelism()} CPUs, node ${process.version}, ${fromSource ? 'from source under tsx' : 'compiled (esbuild bundle)'}, ${describeNodeFlags()} · ${concurrency} in flight, ${warmup} s warm-up + ${duration} s × ${rounds} rounds each, alternating${hasTaskset ? '; callee on CPU 0, caller on CPU 1' : ''}
load average (1, 5, 15 min) before ${loadBefore}, after ${loadAfter}${features}

| variant | calls/s (mean) | per round | p50 ms | p99 ms | caller CPU µs/call | callee CPU µs/call | worst wait for a CPU | ⇒ calls/s per core pair | errors |
|---|---:|---|---:|---:|---:|---:|---:|---:|---:|`);
for (const c of configs) {
  const s = sums.get(c.key)!;
  // What CPU per call allows with one core per side: the busier side sets the pace (NATS: nats-server's CPU not counted).
  const perCorePair = 1e6 / Math.max(s.clientCpu, s.serverCpu);
  console.log(
    `| ${c.key} | ${f0(s.throughput)} | ${s.perRound.map(f0).join(' / ')} | ${s.p50.toFixed(2)} | ${s.p99.toFixed(2)} | ${s.clientCpu.toFixed(1)} | ${s.serverCpu.toFixed(1)} | ${s.wait.toFixed(0)} %${s.disturbed ? ' ⚠' : ''} | ${c.transport === 'nats' ? '≤ ' : ''}${f0(perCorePair)} | ${s.errors} |`,
  );
}

const ratio = (a: string, b: string) => {
  const x = sums.get(a);
  const y = sums.get(b);
  return x && y ? x.throughput / y.throughput : undefined;
};
const pct = (v: number) => `${(v * 100).toFixed(1)} %`;
console.log('');
const own = ratio('chassis-full', 'chassis-bare');
if (own !== undefined) console.log(`chassis-full / chassis-bare throughput: ${pct(own)} (what the chassis' features cost it; bench/rpc splits it up)`);
for (const t of transports) {
  const key = `moleculer-full (${t})`;
  const r = ratio('chassis-full', key);
  const chassis = sums.get('chassis-full');
  const mol = sums.get(key);
  if (r !== undefined && chassis && mol) {
    const lowerP99 = chassis.p99 < mol.p99;
    // By CPU per call: each stack at the pace of its busier side (a lower bound for Moleculer over NATS).
    const byCpu = Math.max(mol.clientCpu, mol.serverCpu) / Math.max(chassis.clientCpu, chassis.serverCpu);
    console.log(
      `issue 3: chassis-full / ${key} throughput: ${r.toFixed(2)}× (budget ≥ ${MOLECULER_BUDGET}×: ${r >= MOLECULER_BUDGET ? 'met' : 'MISSED'}); ` +
        `p99 ${chassis.p99.toFixed(2)} vs ${mol.p99.toFixed(2)} ms (${lowerP99 ? 'lower: met' : 'NOT lower: MISSED'}); ` +
        `by CPU per call ${t === 'nats' ? '≤ ' : ''}${byCpu.toFixed(2)}×`,
    );
  }
  // The same chassis between services on one machine, over a Unix socket (the callee's SOCKET_PATH): Moleculer's
  // transporters have no such option, so this is reported beside the budget's TCP comparison, not instead of it.
  const socketRatio = ratio('chassis-full-socket', key);
  const socket = sums.get('chassis-full-socket');
  if (socketRatio !== undefined && socket && mol) {
    console.log(
      `co-located: chassis-full-socket / ${key} throughput: ${socketRatio.toFixed(2)}×; p99 ${socket.p99.toFixed(2)} vs ${mol.p99.toFixed(2)} ms; ` +
        `by CPU per call ${t === 'nats' ? '≤ ' : ''}${(Math.max(mol.clientCpu, mol.serverCpu) / Math.max(socket.clientCpu, socket.serverCpu)).toFixed(2)}×`,
    );
  }
  // The ceiling of any chassis built on fastify + undici against this transporter: 1.5× is out of reach of the
  // chassis whenever its own bare stack falls short of it.
  const floor = ratio('fastify-bare', key);
  if (floor !== undefined) console.log(`fastify-bare / ${key} throughput: ${floor.toFixed(2)}× (the most any chassis on fastify + undici could reach)`);
  const bare = ratio(`moleculer-full (${t})`, `moleculer-bare (${t})`);
  if (bare !== undefined) console.log(`moleculer-full / moleculer-bare (${t}) throughput: ${pct(bare)} (what Moleculer's features cost it)`);
}
const fastest = transports
  .map((t) => ({ t, s: sums.get(`moleculer-full (${t})`) }))
  .filter((x) => x.s)
  .sort((a, b) => b.s!.throughput - a.s!.throughput)[0];
if (fastest && transports.length > 1) console.log(`Moleculer's fastest transporter with its features on, in this run: ${fastest.t}`);
console.log('throughput and latency are means over rounds; CPU per call is the lowest round (neighbours only ever add to it);');
console.log(`"wait for a CPU": share of the window the busier side's main thread was runnable but another process had its CPU (⚠: over ${maxWaitPct} % after ${tries} tries)`);
const errors = [...sums.values()].reduce((a, s) => a + s.errors, 0);
process.exit(errors > 0 ? 1 : 0);
