// Instructions per call, by side, for bench/rpc's stacks: the attribution method of docs/benchmarks.md, scripted.
// Unlike throughput or CPU time, a count of executed instructions does not depend on what else the machine runs, so
// two variants can be compared on a busy machine to ±1 % (occasional outliers: repeat, keep the lowest).
//
//   node --import tsx bench/rpc/instructions.ts [--stacks=chassis,chassis+pipeline,…] [--side=client,server]
//                                               [--warm=10000] [--calls=30000] [--concurrency=64] [--keep]
//                                               [--swap=packages/chassis/src/client/client.ts:/tmp/client-variant.ts,…]
//                                               [--at=<git revision>] [--node-defaults]
//
// For each stack and side: that side runs under valgrind's callgrind with instrumentation off, the other natively;
// after `warm` calls `callgrind_control -i on`, then `calls` calls are counted, `-i off`. User-space instructions of
// the whole process (all its threads: GC and compiler included) divided by the calls. --keep leaves the
// callgrind.out files in bench/rpc/profiles/callgrind/ (git-ignored) for `callgrind_annotate` (diff two of them to see where they go).
// --swap compiles a variant of a source file in its place (esbuild onLoad; the working tree is not touched): run
// once without and once with it to see what one change buys. --at=HEAD compiles the sources as committed (others'
// uncommitted work in the tree left out).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { bundle, describeSources } from '../lib/bundle.ts';
import { isStack, STACKS, type Stack } from './stacks.ts';
import { listArg, positiveArg, stringArg } from '../lib/args.ts';
import { describeNodeFlags, nodeFlags } from '../lib/node-flags.ts';

const stacks = listArg('stacks', 'chassis,chassis+pipeline') as Stack[];
for (const s of stacks) if (!isStack(s)) throw new Error(`unknown stack ${s}`);
const sides = listArg('side', 'client,server') as ('client' | 'server')[];
const warm = positiveArg('warm', 10_000);
const calls = positiveArg('calls', 30_000);
const concurrency = positiveArg('concurrency', 64);
const keep = process.argv.includes('--keep');
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const swaps = Object.fromEntries(
  (stringArg('swap')?.split(',') ?? []).map((pair) => {
    const [from, to] = pair.split(':');
    if (!from || !to) throw new Error('--swap=<source>:<variant>[,…]');
    return [path.resolve(repoRoot, from), path.resolve(to)];
  }),
);
if (spawnSync('valgrind', ['--version']).status !== 0) throw new Error('valgrind is not installed (apt-get install valgrind)');

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const outDir = keep ? here('./profiles/callgrind/') : path.join(tmpdir(), `bench-rpc-callgrind-${process.pid}`);
mkdirSync(outDir, { recursive: true });
const at = stringArg('at');
const bundles = await bundle({ server: here('./server.ts'), count: here('./count.ts') }, { swaps, ...(at ? { at } : {}) });
console.error(`${describeNodeFlags()}; sources: ${describeSources(at)}${Object.keys(swaps).length ? `, swapped: ${Object.entries(swaps).map(([a, b]) => `${path.relative(repoRoot, a)} ← ${b}`).join(', ')}` : ''}`);
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(bundles.dir, { recursive: true, force: true });
  if (!keep) rmSync(outDir, { recursive: true, force: true });
});

function start(script: 'server' | 'count', args: string[], outFile: string | undefined): ChildProcess {
  const nodeArgs = [...nodeFlags, bundles.files[script]!, ...args];
  const [cmd, argv] = outFile
    ? ['valgrind', ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${outFile}`, process.execPath, ...nodeArgs]]
    : [process.execPath, nodeArgs];
  // A side under callgrind answers far slower than natively: every call gets 10 minutes instead of the chassis' 5 s,
  // and a server's event-loop-delay shedding is off while it is counted (its loop lags the whole time).
  const env = { ...process.env, BENCH_CALL_TIMEOUT_MS: '600000', ...(outFile && script === 'server' ? { LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0' } : {}) };
  const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
  });
  child.once('exit', (code) => {
    children.delete(child);
    if (code) process.stderr.write(`${script} exited with ${code}:\n${stderr.split('\n').filter((l) => !l.startsWith('==')).slice(-20).join('\n')}\n`);
  });
  children.add(child);
  return child;
}

function lineStream(child: ChildProcess): (match: (line: string) => boolean) => Promise<string> {
  const pending: string[] = [];
  let waiting: { match: (l: string) => boolean; resolve: (l: string) => void } | undefined;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (waiting?.match(line)) {
      const w = waiting;
      waiting = undefined;
      w.resolve(line);
    } else pending.push(line);
  });
  return (match) => {
    const i = pending.findIndex(match);
    if (i >= 0) return Promise.resolve(pending.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      waiting = { match, resolve };
      child.once('exit', (code) => reject(new Error(`process exited with ${code}`)));
    });
  };
}

const control = (pid: number, ...args: string[]) => {
  const r = spawnSync('callgrind_control', [...args, String(pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`callgrind_control ${args.join(' ')} ${pid}: ${r.stderr || r.stdout}`);
};
const exited = (c: ChildProcess) => new Promise<void>((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', () => resolve())));

/** Total instructions (Ir) recorded in a callgrind output file. */
function totalIr(file: string): number {
  const text = readFileSync(file, 'utf8');
  // `summary:` can be 0 when instrumentation was off at start; `totals:` is the sum of the counted costs.
  const m = /^totals:\s+(\d+)/m.exec(text) ?? /^summary:\s+(\d+)/m.exec(text);
  if (!m) throw new Error(`no totals in ${file}`);
  return Number(m[1]);
}

const results: { stack: Stack; side: string; kPerCall: number }[] = [];
for (const stack of stacks) {
  for (const side of sides) {
    const out = path.join(outDir, `callgrind.out.${stack.replace('+', '-')}.${side}`);
    const server = start('server', [STACKS[stack].server], side === 'server' ? out : undefined);
    const serverLine = lineStream(server);
    const url = (await serverLine((l) => l.startsWith('READY '))).slice('READY '.length).trim();
    const count = start('count', [stack, url, String(concurrency), String(warm), String(calls)], side === 'client' ? out : undefined);
    const countLine = lineStream(count);
    const measured = side === 'server' ? server : count;
    const began = Date.now();
    await countLine((l) => l === 'WARM');
    control(measured.pid!, '-i', 'on');
    count.stdin!.write('GO\n');
    const counted = Number((await countLine((l) => l.startsWith('COUNTED '))).split(' ')[1]);
    control(measured.pid!, '-i', 'off');
    count.stdin!.write('STOP\n');
    await exited(count);
    server.kill('SIGTERM');
    await exited(server);
    const kPerCall = totalIr(out) / counted / 1000;
    results.push({ stack, side, kPerCall });
    console.error(`${stack} ${side}: ${kPerCall.toFixed(1)} k instructions per call (${counted} calls counted after ${warm}, ${((Date.now() - began) / 1000).toFixed(0)} s)`);
  }
}
console.log('\n| stack | ' + sides.map((s) => `${s} k instr./call`).join(' | ') + ' |');
console.log('|---|' + sides.map(() => '---:').join('|') + '|');
for (const stack of stacks) console.log(`| ${stack} | ${sides.map((side) => results.find((r) => r.stack === stack && r.side === side)!.kPerCall.toFixed(1)).join(' | ')} |`);
if (keep) console.log(`\ncallgrind output: ${outDir} (callgrind_annotate --inclusive=yes <file> | head -60)`);
process.exit(0);
