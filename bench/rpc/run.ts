// RPC overhead benchmark: the chassis client + chassis server against bare fastify + an undici Pool.
//
//   node --import tsx bench/rpc/run.ts [--duration=5] [--warmup=2] [--concurrency=64] [--rounds=5] [--profile] [--source]
//
// Both servers run in one process each, pinned to CPU 0; each measurement is a fresh load process pinned to
// CPU 1 (when `taskset` exists), so server and client never share an event loop or a core. The two stacks
// alternate (chassis, bare, bare, chassis, …) so drift on a shared machine hits both alike, and the verdict is the
// median over rounds of chassis/bare in the same round (one noisy round cannot swing it).
// --profile writes V8 CPU profiles of the servers and load processes to bench/rpc/profiles/.
//
// Both sides run compiled, as production would: server.ts and load.ts (with the chassis sources they import) are
// bundled once by esbuild into node_modules/.cache/bench-rpc/ and run with plain `node`; third-party packages stay
// external, so fastify, undici, zod and pino are the very files both stacks load. --source runs the .ts files
// under tsx instead (its transform keeps function names: every closure made per call pays a `__name()` wrapper).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { compileEntries } from '../../tools/cli/src/compile.ts';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { Mode } from './echo.ts';

const arg = (name: string, fallback: number): number => {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  const v = hit ? Number(hit.split('=')[1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
};
const duration = arg('duration', 5);
const warmup = arg('warmup', 2);
const concurrency = arg('concurrency', 64);
const rounds = arg('rounds', 5);
const profile = process.argv.includes('--profile');
const fromSource = process.argv.includes('--source');
const BUDGET = 0.85;

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const profileDir = here('./profiles/');
const hasTaskset = spawnSync('taskset', ['--version']).status === 0 && availableParallelism() >= 2;

/** Each entry's bundle, once compiled. */
const compiled: Record<string, string> = {};

/** Bundles the entry points with the workspace's own code (the chassis), as the bank runner does; npm packages stay external. */
async function compile(): Promise<void> {
  const bundles = await compileEntries({ server: here('./server.ts'), load: here('./load.ts') });
  Object.assign(compiled, bundles.files);
  process.once('exit', () => rmSync(path.dirname(Object.values(bundles.files)[0]!), { recursive: true, force: true }));
}

function node(cpu: number, script: string, args: string[]): ChildProcess {
  const entry = fromSource ? ['--import', 'tsx', here(`./${script}.ts`)] : [compiled[script]!];
  const nodeArgs = [...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), ...entry, ...args];
  const [cmd, argv] = hasTaskset ? ['taskset', ['-c', String(cpu), process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  return spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
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

async function startServer(mode: Mode): Promise<{ url: string; stop(): Promise<void> }> {
  const child = node(0, 'server', [mode]);
  const line = await firstLine(child, (l) => l.startsWith('READY '));
  return {
    url: line.slice('READY '.length).trim(),
    stop: () => new Promise((resolve) => { child.once('exit', () => resolve()); child.kill('SIGTERM'); }),
  };
}

interface Result {
  mode: Mode;
  calls: number;
  errors: number;
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

async function measure(mode: Mode, url: string): Promise<Result> {
  const child = node(1, 'load', [mode, url, String(concurrency), String(warmup), String(duration)]);
  const line = await firstLine(child, (l) => l.startsWith('{'));
  await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once('exit', resolve)));
  return JSON.parse(line) as Result;
}

if (!fromSource) await compile();
const servers = { chassis: await startServer('chassis'), bare: await startServer('bare') };
const results: Result[] = [];
const roundRatios: number[] = [];
try {
  for (let round = 1; round <= rounds; round++) {
    const inRound: Partial<Record<Mode, Result>> = {};
    // ABBA order (chassis first in odd rounds, bare first in even ones), so a steady drift favours neither.
    for (const mode of round % 2 ? (['chassis', 'bare'] as const) : (['bare', 'chassis'] as const)) {
      const r = await measure(mode, servers[mode].url);
      results.push(r);
      inRound[mode] = r;
      console.error(
        `round ${round} ${mode.padEnd(7)} ${r.throughput.toFixed(0).padStart(6)} calls/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  ` +
          `CPU/call client ${r.clientCpuUsPerCall.toFixed(1)} µs (sys ${r.clientSysUsPerCall.toFixed(1)}) server ${r.serverCpuUsPerCall.toFixed(1)} µs (sys ${r.serverSysUsPerCall.toFixed(1)})  ` +
          `waited for a CPU client ${(r.clientWaited * 100).toFixed(0)}% server ${(r.serverWaited * 100).toFixed(0)}%  errors ${r.errors}`,
      );
    }
    const roundRatio = inRound.chassis!.throughput / inRound.bare!.throughput;
    roundRatios.push(roundRatio);
    console.error(`round ${round} chassis / bare ${(roundRatio * 100).toFixed(1)}%`);
  }
} finally {
  await Promise.all([servers.chassis.stop(), servers.bare.stop()]);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const summary = (mode: Mode) => {
  const rs = results.filter((r) => r.mode === mode);
  return {
    throughput: mean(rs.map((r) => r.throughput)),
    p50: mean(rs.map((r) => r.p50Ms)),
    p99: mean(rs.map((r) => r.p99Ms)),
    // Interference from other processes only adds CPU time, so the lowest round is the best estimate of the code's own cost.
    clientCpu: Math.min(...rs.map((r) => r.clientCpuUsPerCall)),
    serverCpu: Math.min(...rs.map((r) => r.serverCpuUsPerCall)),
    errors: rs.reduce((a, r) => a + r.errors, 0),
  };
};
const chassis = summary('chassis');
const bare = summary('bare');
const ratio = median(roundRatios);
// What the CPU figures alone predict: each stack runs at the speed of its busier side (client and server have a core each).
const cpuRatio = Math.max(bare.clientCpu, bare.serverCpu) / Math.max(chassis.clientCpu, chassis.serverCpu);

const row = (name: string, s: ReturnType<typeof summary>) =>
  `| ${name} | ${s.throughput.toFixed(0)} | ${s.p50.toFixed(2)} | ${s.p99.toFixed(2)} | ${s.clientCpu.toFixed(1)} | ${s.serverCpu.toFixed(1)} | ${s.errors} |`;
console.log(`
${availableParallelism()} CPUs, node ${process.version}, ${fromSource ? 'from source under tsx' : 'compiled (esbuild bundle)'}, ${concurrency} in flight, ${warmup} s warm-up + ${duration} s × ${rounds} rounds each, alternating${hasTaskset ? '; server on CPU 0, client on CPU 1' : ''}

| stack | calls/s | p50 ms | p99 ms | client CPU µs/call | server CPU µs/call | errors |
|---|---:|---:|---:|---:|---:|---:|
${row('chassis client + chassis server', chassis)}
${row('undici Pool + bare fastify', bare)}

chassis / bare throughput: ${(ratio * 100).toFixed(1)}% (median of the ${rounds} rounds' ratios; budget ≥ ${BUDGET * 100}%: ${ratio >= BUDGET ? 'met' : 'MISSED'})
  per round: ${roundRatios.map((r) => `${(r * 100).toFixed(1)}%`).join(', ')}; ratio of the mean throughputs: ${((chassis.throughput / bare.throughput) * 100).toFixed(1)}%
  predicted by CPU per call (busier side of each stack): ${(cpuRatio * 100).toFixed(1)}%
throughput and latency are means over rounds; CPU per call is the lowest round (neighbours only ever add to it)`);
if (profile) console.log(`CPU profiles: ${profileDir}`);
process.exitCode = chassis.errors + bare.errors > 0 ? 1 : 0;
