// RPC overhead benchmark: one trivial call through several stacks in one run — bare fastify + an undici Pool, the
// chassis core, the chassis with its client pipeline, with its observability — judged against the budgets of issues
// 2, 3 and 4 (stacks.ts says what each stack includes and which ratio each budget is).
//
//   node --import tsx bench/rpc/run.ts [--duration=5] [--warmup=2] [--concurrency=64] [--rounds=5]
//                                      [--stacks=bare,chassis,…|all] [--profile] [--source] [--at=HEAD] [--node-defaults]
//
// Every server runs in its own process pinned to CPU 0; each measurement is a fresh load process pinned to CPU 1
// (when `taskset` exists), so server and client never share an event loop or a core. The stacks alternate, in
// reverse order every other round (ABBA), so drift on a shared machine hits all alike, and each budget's verdict is
// the median over rounds of stack / reference in the same round (one noisy round cannot swing it).
// Every process gets the Node.js flags the bank's services run with (tools/cli/src/node-tuning.ts); --node-defaults
// runs them with V8's defaults instead.
// --profile writes V8 CPU profiles of the servers and load processes to bench/rpc/profiles/.
//
// Everything runs compiled, as production would: server.ts and load.ts (with the chassis sources they import) are
// bundled once by esbuild and run with plain `node`; third-party packages stay external, so fastify, undici, zod
// and pino are the very files every stack loads. --source runs the .ts files under tsx instead (its transform
// keeps function names: every closure made per call pays a `__name()` wrapper). --at=<rev> compiles the sources as
// committed at that git revision, leaving uncommitted work in the tree out (the header says which).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { bundle, describeSources } from '../lib/bundle.ts';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { BUDGETS, DEFAULT_STACKS, INFO, isStack, STACKS, type ServerKind, type Stack } from './stacks.ts';
import { positiveArg, stringArg } from '../lib/args.ts';
import { describeNodeFlags, nodeFlags } from '../lib/node-flags.ts';

const duration = positiveArg('duration', 5);
const warmup = positiveArg('warmup', 2);
const concurrency = positiveArg('concurrency', 64);
const rounds = positiveArg('rounds', 5);
const profile = process.argv.includes('--profile');
const fromSource = process.argv.includes('--source');
const stacksArg = stringArg('stacks');
const stacks: Stack[] = stacksArg === 'all' ? (Object.keys(STACKS) as Stack[]) : stacksArg ? stacksArg.split(',').map((s) => s.trim()) as Stack[] : DEFAULT_STACKS;
for (const s of stacks) if (!isStack(s)) throw new Error(`unknown stack ${s}; known: ${Object.keys(STACKS).join(', ')}`);
if (stacks.length < 2) throw new Error('--stacks: at least two, to have a ratio');

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const profileDir = here('./profiles/');
const hasTaskset = spawnSync('taskset', ['--version']).status === 0 && availableParallelism() >= 2;
/** --at=<git revision>: compile the sources as committed there (HEAD: leave others' uncommitted work out). */
const at = stringArg('at');
if (at && fromSource) throw new Error('--at compiles; it does not go with --source');
const commit = describeSources(at);

/** Each entry's bundle, once compiled. */
const compiled: Record<string, string> = {};

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

function node(cpu: number, script: string, args: string[]): ChildProcess {
  const entry = fromSource ? ['--import', 'tsx', here(`./${script}.ts`)] : [compiled[script]!];
  const nodeArgs = [...nodeFlags, ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), ...entry, ...args];
  const [cmd, argv] = hasTaskset ? ['taskset', ['-c', String(cpu), process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

async function firstLine(child: ChildProcess, match: (line: string) => boolean): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`process exited with ${code} before reporting`)));
    lines.on('line', (line) => {
      if (match(line)) resolve(line);
    });
  });
}

async function startServer(kind: ServerKind): Promise<{ url: string; stop(): Promise<void> }> {
  const child = node(0, 'server', [kind]);
  const line = await firstLine(child, (l) => l.startsWith('READY '));
  return {
    url: line.slice('READY '.length).trim(),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

interface Result {
  stack: Stack;
  calls: number;
  errors: number;
  firstError?: string;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  clientCpuUsPerCall: number;
  serverCpuUsPerCall: number;
  clientSysUsPerCall: number;
  serverSysUsPerCall: number;
  clientWaited: number;
  serverWaited: number;
}

async function measure(stack: Stack, url: string): Promise<Result> {
  const child = node(1, 'load', [stack, url, String(concurrency), String(warmup), String(duration)]);
  const line = await firstLine(child, (l) => l.startsWith('RESULT '));
  await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once('exit', resolve)));
  return JSON.parse(line.slice('RESULT '.length)) as Result;
}

const load = () => loadavg().map((v) => v.toFixed(1)).join(' ');
if (!fromSource) await compile();
const startedAt = new Date();
const loadBefore = load();
const servers = new Map<ServerKind, { url: string; stop(): Promise<void> }>();
const results = new Map<Stack, Result[]>(stacks.map((s) => [s, []]));
try {
  for (const s of stacks) {
    const kind = STACKS[s].server;
    if (!servers.has(kind)) servers.set(kind, await startServer(kind));
  }
  for (let round = 1; round <= rounds; round++) {
    // ABBA order (forward in odd rounds, reversed in even ones), so a steady drift favours no stack.
    for (const stack of round % 2 ? stacks : [...stacks].reverse()) {
      const r = await measure(stack, servers.get(STACKS[stack].server)!.url);
      results.get(stack)!.push(r);
      console.error(
        `round ${round} ${stack.padEnd(21)} ${r.throughput.toFixed(0).padStart(6)} calls/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  ` +
          `CPU/call client ${r.clientCpuUsPerCall.toFixed(1)} µs (sys ${r.clientSysUsPerCall.toFixed(1)}) server ${r.serverCpuUsPerCall.toFixed(1)} µs (sys ${r.serverSysUsPerCall.toFixed(1)})  ` +
          `waited for a CPU client ${(r.clientWaited * 100).toFixed(0)}% server ${(r.serverWaited * 100).toFixed(0)}%  load ${load()}  errors ${r.errors}${r.firstError ? ` (${r.firstError})` : ''}`,
      );
    }
  }
} finally {
  await Promise.all([...servers.values()].map((s) => s.stop()));
}
const loadAfter = load();

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const summary = (stack: Stack) => {
  const rs = results.get(stack)!;
  return {
    throughput: mean(rs.map((r) => r.throughput)),
    p50: mean(rs.map((r) => r.p50Ms)),
    p99: mean(rs.map((r) => r.p99Ms)),
    // Interference from other processes only adds CPU time, so the lowest round is the best estimate of the code's own cost.
    clientCpu: Math.min(...rs.map((r) => r.clientCpuUsPerCall)),
    serverCpu: Math.min(...rs.map((r) => r.serverCpuUsPerCall)),
    waited: Math.max(...rs.map((r) => Math.max(r.clientWaited, r.serverWaited))),
    errors: rs.reduce((a, r) => a + r.errors, 0),
  };
};
const sums = new Map(stacks.map((s) => [s, summary(s)]));

/** stack / reference: the median of the per-round ratios, the rounds' ratios, and what CPU per call predicts. */
function compare(stack: Stack, reference: Stack) {
  const a = results.get(stack);
  const b = results.get(reference);
  if (!a || !b) return undefined;
  const perRound = a.map((r, i) => r.throughput / b[i]!.throughput);
  const sa = sums.get(stack)!;
  const sb = sums.get(reference)!;
  // Each stack runs at the speed of its busier side (client and server have a core each).
  const byCpu = Math.max(sb.clientCpu, sb.serverCpu) / Math.max(sa.clientCpu, sa.serverCpu);
  return { median: median(perRound), perRound, ofMeans: sa.throughput / sb.throughput, byCpu };
}
const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

const row = (stack: Stack) => {
  const s = sums.get(stack)!;
  return `| ${stack} | ${s.throughput.toFixed(0)} | ${s.p50.toFixed(2)} | ${s.p99.toFixed(2)} | ${s.clientCpu.toFixed(1)} | ${s.serverCpu.toFixed(1)} | ${(s.waited * 100).toFixed(0)}% | ${s.errors} |`;
};
console.log(`
${startedAt.toISOString()} · commit ${commit} · ${availableParallelism()} CPUs, node ${process.version}, ${fromSource ? 'from source under tsx' : 'compiled (esbuild bundle)'}, ${describeNodeFlags()} · ${concurrency} in flight, ${warmup} s warm-up + ${duration} s × ${rounds} rounds per stack, ABBA order${hasTaskset ? '; server on CPU 0, client on CPU 1' : ''}
load average (1, 5, 15 min) before ${loadBefore}, after ${loadAfter}${profile ? ' · --profile: CPU profiling on, do not quote these figures' : ''}

${stacks.map((s) => `- ${s}: ${STACKS[s].what}`).join('\n')}

| stack | calls/s | p50 ms | p99 ms | client CPU µs/call | server CPU µs/call | worst wait for a CPU | errors |
|---|---:|---:|---:|---:|---:|---:|---:|
${stacks.map(row).join('\n')}
`);
for (const b of BUDGETS) {
  const c = compare(b.stack, b.reference);
  if (!c) {
    console.log(`issue ${b.issue}: ${b.stack} / ${b.reference} not measured in this run (--stacks)`);
    continue;
  }
  console.log(
    `issue ${b.issue}: ${b.stack} / ${b.reference} = ${pct(c.median)} (median of per-round ratios; budget ≥ ${pct(b.min)}: ${c.median >= b.min ? 'met' : 'MISSED'}) — ${b.what}\n` +
      `  per round ${c.perRound.map(pct).join(', ')}; ratio of mean throughputs ${pct(c.ofMeans)}; predicted by CPU per call ${pct(c.byCpu)} (${c.byCpu >= b.min ? 'within' : 'outside'} budget)`,
  );
}
const info = INFO.map(([a, b, what]) => ({ a, b, what, c: compare(a, b) })).filter((x) => x.c);
if (info.length) {
  console.log('\nfor attribution (not budgets):');
  for (const { a, b, what, c } of info) console.log(`  ${a} / ${b} = ${pct(c!.median)} (per round ${c!.perRound.map(pct).join(', ')}; by CPU ${pct(c!.byCpu)}): ${what}`);
}
console.log(`
throughput and latency are means over rounds; CPU per call is the lowest round (neighbours only ever add to it);
"wait for a CPU": worst share of a window either side was runnable while another process had its core — a round
where it is high was decided by the machine, not the code. Quote figures with the load average above.`);
if (profile) console.log(`CPU profiles: ${profileDir}`);
const errors = [...sums.values()].reduce((a, s) => a + s.errors, 0);
process.exitCode = errors > 0 ? 1 : 0;
