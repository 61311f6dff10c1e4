import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LogFiles, followLogs, logDir, parseTime, readLogs, type LogEntry } from '../src/log-files.ts';
import { logs, parseLogsArgs, runLogs, LogsUsageError, type LogsIo } from '../src/commands/logs.ts';
import { startBank } from '../src/bank.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const FAKE = path.join(here, 'fixtures', 'fake-service.ts');
const EXTERNAL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'simplebank-logs-'));
  dirs.push(d);
  return d;
}

const line = (o: Record<string, unknown>) => JSON.stringify({ level: 30, time: '2026-01-02T03:04:05.000Z', service: 'orders', msg: 'x', ...o });

function captureIo(signal?: AbortSignal): LogsIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, write: (t) => out.push(t), error: (t) => err.push(t), colour: false, ...(signal ? { signal } : {}) };
}

test('service JSON lines are stored as written; other output is wrapped into JSON lines', async () => {
  const dir = await tempDir();
  const files = new LogFiles({ dir });
  const json = line({ msg: 'order accepted', traceId: 't1' });
  files.write('orders', 'stdout', json);
  files.write('orders', 'stderr', 'TypeError: boom');
  files.write('orders', 'stderr', '[supervisor] exited (code 1); restarting in 250 ms');
  files.write('../etc', 'stdout', json); // not a service name: never a path outside the folder
  await files.close();
  assert.deepEqual(await readdir(dir), ['orders.log']);
  const stored = (await readFile(path.join(dir, 'orders.log'), 'utf8')).trimEnd().split('\n');
  assert.equal(stored[0], json);
  const crash = JSON.parse(stored[1]!) as Record<string, unknown>;
  assert.deepEqual({ level: crash.level, service: crash.service, stream: crash.stream, msg: crash.msg }, { level: 50, service: 'orders', stream: 'stderr', msg: 'TypeError: boom' });
  assert.ok(!Number.isNaN(new Date(crash.time as string).getTime()));
  assert.equal((JSON.parse(stored[2]!) as { level: number }).level, 40, "the supervisor's notes are warnings");
});

test('files are bounded: rotated at maxBytes, keeping `keep` old files, nothing lost in between', async () => {
  const dir = await tempDir();
  const files = new LogFiles({ dir, maxBytes: 1_000, keep: 2 });
  const lines = Array.from({ length: 60 }, (_, i) => line({ msg: `line ${String(i).padStart(3, '0')}`, pad: 'x'.repeat(40) }));
  for (const l of lines) files.write('fees', 'stdout', l);
  await files.close();
  assert.deepEqual((await readdir(dir)).sort(), ['fees.log', 'fees.log.1', 'fees.log.2']);
  for (const f of ['fees.log', 'fees.log.1', 'fees.log.2']) assert.ok((await stat(path.join(dir, f))).size <= 1_000, `${f} within maxBytes`);
  // The newest lines survive in order across the files (oldest file first).
  const kept = (await readLogs(dir)).map((e) => e.line);
  assert.ok(kept.length > 0 && kept.length < lines.length);
  assert.deepEqual(kept, lines.slice(-kept.length));
});

test('a new run appends to the file of the last one', async () => {
  const dir = await tempDir();
  for (const msg of ['first run', 'second run']) {
    const files = new LogFiles({ dir });
    files.write('fees', 'stdout', line({ msg }));
    await files.close();
  }
  assert.deepEqual((await readLogs(dir)).map((e) => JSON.parse(e.line).msg), ['first run', 'second run']);
});

test('readLogs merges services in time order and filters by service, trace, request, level, time and text', async () => {
  const dir = await tempDir();
  const files = new LogFiles({ dir });
  files.write('gateway', 'stdout', line({ service: 'gateway', time: '2026-01-02T03:00:01.000Z', msg: 'POST /orders', traceId: 'T', requestId: 'R1' }));
  files.write('orders', 'stdout', line({ time: '2026-01-02T03:00:02.000Z', msg: 'order accepted', traceId: 'T', orderId: 'o-1' }));
  files.write('market', 'stdout', line({ service: 'market', time: '2026-01-02T03:00:03.000Z', level: 40, msg: 'exchange slow', traceId: 'T' }));
  files.write('orders', 'stdout', line({ time: '2026-01-02T03:00:04.000Z', level: 50, msg: 'settle failed', traceId: 'U' }));
  files.write('gateway', 'stdout', line({ service: 'gateway', time: '2026-01-02T03:00:00.000Z', msg: 'started' }));
  await files.close();
  const msgs = (entries: LogEntry[]) => entries.map((e) => `${e.service}:${JSON.parse(e.line).msg}`);
  assert.deepEqual(msgs(await readLogs(dir)), ['gateway:started', 'gateway:POST /orders', 'orders:order accepted', 'market:exchange slow', 'orders:settle failed']);
  assert.deepEqual(msgs(await readLogs(dir, { traceId: 'T' })), ['gateway:POST /orders', 'orders:order accepted', 'market:exchange slow']);
  assert.deepEqual(msgs(await readLogs(dir, { services: ['orders'] })), ['orders:order accepted', 'orders:settle failed']);
  assert.deepEqual(msgs(await readLogs(dir, { requestId: 'R1' })), ['gateway:POST /orders']);
  assert.deepEqual(msgs(await readLogs(dir, { minLevel: 40 })), ['market:exchange slow', 'orders:settle failed']);
  assert.deepEqual(msgs(await readLogs(dir, { since: Date.parse('2026-01-02T03:00:02Z'), until: Date.parse('2026-01-02T03:00:03Z') })), ['orders:order accepted', 'market:exchange slow']);
  assert.deepEqual(msgs(await readLogs(dir, { text: 'o-1' })), ['orders:order accepted']);
  assert.deepEqual(await readLogs(path.join(dir, 'missing')), []);
});

test('followLogs prints lines as they are appended, across a rotation, until aborted', async () => {
  const dir = await tempDir();
  const files = new LogFiles({ dir, maxBytes: 400, keep: 1 });
  files.write('orders', 'stdout', line({ msg: 'before follow' }));
  await files.close();
  const seen: string[] = [];
  const controller = new AbortController();
  const following = followLogs(dir, { minLevel: 30 }, (e) => seen.push(`${e.service}:${JSON.parse(e.line).msg}`), controller.signal, 20);
  await new Promise((r) => setTimeout(r, 60));
  const writer = new LogFiles({ dir, maxBytes: 400, keep: 1 });
  for (let i = 0; i < 8; i++) {
    writer.write(i % 2 ? 'orders' : 'fees', 'stdout', line({ msg: `m${i}`, level: i === 3 ? 20 : 30 }));
    await new Promise((r) => setTimeout(r, 30));
  }
  await writer.close();
  await appendFile(path.join(dir, 'fees.log'), line({ msg: 'half a li'}).slice(0, 20)); // a line still being written
  await new Promise((r) => setTimeout(r, 100));
  controller.abort();
  await following;
  assert.deepEqual(seen.filter((s) => s.startsWith('fees')), ['fees:m0', 'fees:m2', 'fees:m4', 'fees:m6']);
  assert.deepEqual(seen.filter((s) => s.startsWith('orders')), ['orders:m1', 'orders:m5', 'orders:m7'], 'm3 is below the level; "before follow" was already there');
});

test('--since and --until take durations ago or ISO times', () => {
  const now = Date.parse('2026-01-02T12:00:00Z');
  assert.equal(parseTime('10m', now), now - 600_000);
  assert.equal(parseTime('2h', now), now - 7_200_000);
  assert.equal(parseTime('1d', now), now - 86_400_000);
  assert.equal(parseTime('30s', now), now - 30_000);
  assert.equal(parseTime('2026-01-02T11:00:00Z', now), Date.parse('2026-01-02T11:00:00Z'));
  assert.equal(parseTime('yesterday', now), undefined);
  assert.equal(parseTime('10', now), undefined);
});

test('logs arguments: services, filters and the data folder', () => {
  const now = Date.parse('2026-01-02T12:00:00Z');
  const c = parseLogsArgs(['orders', 'fees', '--trace', 'abc', '--level', 'warn', '--since', '5m', '-n', '20', '--data-dir', '/tmp/bank'], {}, now);
  assert.deepEqual(c.filter, { services: ['orders', 'fees'], traceId: 'abc', minLevel: 40, since: now - 300_000 });
  assert.equal(c.tail, 20);
  assert.equal(c.dir, path.resolve('/tmp/bank/logs'));
  assert.equal(parseLogsArgs([], { SIMPLEBANK_DATA_DIR: '/srv/bank' }).dir, path.resolve('/srv/bank/logs'));
  assert.equal(parseLogsArgs(['-f', '--json'], {}).follow, true);
  assert.throws(() => parseLogsArgs(['bank'], {}), (e: Error) => e instanceof LogsUsageError && /unknown service bank/.test(e.message));
  assert.throws(() => parseLogsArgs(['--level', 'loud'], {}), /--level must be one of/);
  assert.throws(() => parseLogsArgs(['--since', 'soon'], {}), /--since must be/);
  assert.throws(() => parseLogsArgs(['--tail', '-1'], {}), LogsUsageError);
  assert.throws(() => parseLogsArgs(['--colour'], {}), LogsUsageError);
});

test('simplebank logs prints matches as npm start does, raw with --json, the last n with --tail', async () => {
  const dataDir = await tempDir();
  const files = new LogFiles({ dir: logDir(dataDir) });
  files.write('orders', 'stdout', line({ time: '2026-01-02T03:00:01.000Z', msg: 'order accepted', traceId: 'T' }));
  files.write('fees', 'stdout', line({ service: 'fees', time: '2026-01-02T03:00:02.000Z', msg: 'fee charged', traceId: 'T' }));
  files.write('fees', 'stdout', line({ service: 'fees', time: '2026-01-02T03:00:03.000Z', msg: 'other', traceId: 'U' }));
  await files.close();

  let io = captureIo();
  assert.equal(await logs(['--trace', 'T', '--data-dir', dataDir], io), 0);
  assert.equal(io.out.length, 2);
  assert.match(io.out[0]!, /\[orders\]\s+info {2}order accepted traceId=T\n$/);
  assert.match(io.out[1]!, /\[fees\]\s+info {2}fee charged traceId=T\n$/);

  io = captureIo();
  assert.equal(await logs(['fees', '--json', '--tail', '1', '--data-dir', dataDir], io), 0);
  assert.deepEqual(io.out.map((s) => JSON.parse(s).msg), ['other']);

  io = captureIo();
  assert.equal(await logs(['--data-dir', path.join(dataDir, 'nothing-here')], io), 1);
  assert.match(io.err.join(''), /no logs in .* yet/);

  io = captureIo();
  assert.equal(await logs(['--level', 'loud'], io), 2);
  assert.match(io.err.join(''), /usage: simplebank logs/);

  io = captureIo();
  assert.equal(await logs(['--help'], io), 0);
  assert.match(io.out.join(''), /--trace <id>/);
});

test('simplebank logs --follow keeps printing until stopped', async () => {
  const dataDir = await tempDir();
  const dir = logDir(dataDir);
  const files = new LogFiles({ dir });
  files.write('orders', 'stdout', line({ msg: 'old' }));
  await files.close();
  const controller = new AbortController();
  const io = captureIo(controller.signal);
  const running = runLogs({ ...parseLogsArgs(['--follow', '--json', '--data-dir', dataDir]) }, io);
  await new Promise((r) => setTimeout(r, 150));
  await appendFile(path.join(dir, 'orders.log'), `${line({ msg: 'new' })}\n`);
  await new Promise((r) => setTimeout(r, 600));
  controller.abort();
  assert.equal(await running, 0);
  assert.deepEqual(io.out.map((s) => JSON.parse(s).msg), ['old', 'new']);
});

test('the runner keeps each service\'s output in <dataDir>/logs/<service>.log', async () => {
  const dataDir = await tempDir();
  const bank = await startBank({ dataDir, ports: 'random', quiet: true, entry: () => FAKE, databaseUrl: EXTERNAL, databasePrefix: `logs_${process.pid}_`, services: ['fees', 'market-data'] });
  try {
    await bank.supervisor.restart('fees');
    await bank.supervisor.waitFor('fees', 'ready');
  } finally {
    await bank.stop({ dropDatabases: true });
  }
  const entries = await readLogs(logDir(dataDir));
  const listening = entries.filter((e) => JSON.parse(e.line).msg === 'fake service listening');
  assert.deepEqual(listening.map((e) => e.service).sort(), ['fees', 'fees', 'market-data'], 'both runs of fees and market-data');
});
