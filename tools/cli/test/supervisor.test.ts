import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freePorts } from '../src/ports.ts';
import { Supervisor, type ServiceSpec, type ServiceStatus, type SupervisorOptions } from '../src/supervisor.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(here, 'fixtures', 'child.ts');
const GUARD = pathToFileURL(path.join(here, '..', 'src', 'child-guard.ts')).href;

const running: Supervisor[] = [];
after(async () => {
  await Promise.all(running.map((s) => s.stop()));
});

async function fixture(name: string, env: Record<string, string> = {}): Promise<ServiceSpec> {
  const [port] = await freePorts(1);
  return {
    name,
    command: process.execPath,
    args: ['--import', 'tsx', '--import', GUARD, CHILD],
    env: { ...process.env, NODE_TEST_CONTEXT: undefined, PORT: String(port), ...env },
    readyUrl: `http://127.0.0.1:${port}/health/ready`,
  };
}

function supervise(specs: ServiceSpec[], options: SupervisorOptions = {}): Supervisor {
  const sup = new Supervisor(specs, { readyPollMs: 50, healthPollMs: 100, ...options });
  running.push(sup);
  return sup;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function eventually(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Runs fixtures/parent.ts (a supervisor of one child), SIGKILLs it, and returns the orphaned child's pid. */
async function orphanChild(env: Record<string, string>): Promise<number> {
  const parent = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures', 'parent.ts')], {
    env: { ...process.env, NODE_TEST_CONTEXT: undefined, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const childPid = await new Promise<number>((resolve, reject) => {
    let out = '';
    parent.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^(\d+)\n/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    parent.once('exit', () => reject(new Error('parent exited early')));
  });
  assert.ok(alive(childPid));
  parent.kill('SIGKILL');
  return childPid;
}

describe('Supervisor', () => {
  test('goes starting → ready once /health/ready answers 200, and stop() ends the child', async () => {
    const sup = supervise([await fixture('svc', { READY_AFTER_MS: '400' })]);
    const states: string[] = [];
    sup.on('state', (s) => states.push(s.state));
    sup.start();
    const starting = sup.get('svc');
    assert.equal(starting.state, 'starting');
    assert.ok(starting.pid);
    const ready = await sup.waitFor('svc', 'ready', 10_000);
    assert.equal(ready.pid, starting.pid);
    assert.ok(Date.now() - ready.startedAt!.getTime() >= 400, 'not ready before the child says so');
    await sup.stop();
    assert.equal(sup.get('svc').state, 'stopped');
    assert.equal(sup.get('svc').pid, undefined);
    assert.equal(sup.get('svc').restarts, 0, 'a requested stop is not a crash');
    assert.equal(alive(starting.pid!), false);
    assert.deepEqual(states, ['starting', 'ready', 'stopped']);
  });

  test('a child given `nice` runs at that niceness, its session\'s autogroup too, and so does its restart', async () => {
    const sup = supervise([{ ...(await fixture('worker')), nice: 10 }, await fixture('api')], { backoff: { initialMs: 10 } });
    sup.start();
    const niceness = async (name: string) => {
      const { pid } = await sup.waitFor(name, 'ready', 10_000);
      const autogroup = await readFile(`/proc/${pid}/autogroup`, 'utf8').catch(() => undefined);
      return { process: os.getPriority(pid!), autogroup: autogroup === undefined ? undefined : Number(/nice (-?\d+)/.exec(autogroup)?.[1]) };
    };
    const worker = await niceness('worker');
    assert.equal(worker.process, 10);
    // Linux with CONFIG_SCHED_AUTOGROUP: between sessions the autogroup's niceness is what counts (sched(7)).
    if (worker.autogroup !== undefined) assert.equal(worker.autogroup, 10);
    assert.deepEqual(await niceness('api'), { process: 0, autogroup: worker.autogroup === undefined ? undefined : 0 });

    const before = sup.get('worker');
    sup.kill('worker', 'SIGKILL');
    await sup.waitFor('worker', (s) => s.state === 'ready' && s.pid !== before.pid, 10_000);
    assert.equal((await niceness('worker')).process, 10, 'a restarted child gets it again');
  });

  test('restarts a crashing child with exponential backoff, capped', async () => {
    const sup = supervise([await fixture('crashy', { CRASH_AFTER_MS: '10' })], { backoff: { initialMs: 100, maxMs: 400, resetAfterMs: 60_000 } });
    const exits: number[] = [];
    const starts: number[] = [];
    sup.on('exit', () => exits.push(Date.now()));
    sup.on('state', (s) => {
      if (s.state === 'starting') starts.push(Date.now());
    });
    sup.start();
    await sup.waitFor('crashy', (s) => s.restarts >= 5, 30_000);
    await sup.stop();
    // Delay between each exit and the next start: 100, 200, 400, 400 (ms), plus scheduling slack.
    const delays = [1, 2, 3, 4].map((i) => starts[i]! - exits[i - 1]!);
    const expected = [100, 200, 400, 400];
    delays.forEach((d, i) => {
      assert.ok(d >= expected[i]! - 5, `delay ${i} was ${d} ms, expected ≥ ${expected[i]}`);
      assert.ok(d < expected[i]! + 250, `delay ${i} was ${d} ms, expected about ${expected[i]}`);
    });
    const last = sup.get('crashy');
    assert.equal(last.lastExit?.code, 1);
    assert.ok(sup.logs('crashy').some((l) => l.includes('[supervisor] exited (code 1); restarting in')));
  });

  test('resets the backoff after a run that lasted resetAfterMs', async () => {
    const sup = supervise([await fixture('flaky', { CRASH_AFTER_MS: '300' })], { backoff: { initialMs: 50, maxMs: 5_000, resetAfterMs: 200 } });
    const exits: number[] = [];
    const starts: number[] = [];
    sup.on('exit', () => exits.push(Date.now()));
    sup.on('state', (s) => {
      if (s.state === 'starting') starts.push(Date.now());
    });
    sup.start();
    await sup.waitFor('flaky', (s) => s.restarts >= 4, 30_000);
    await sup.stop();
    for (const i of [1, 2, 3]) assert.ok(starts[i]! - exits[i - 1]! < 50 + 200, 'every restart uses the initial delay');
  });

  test('a SIGKILLed child is restarted and becomes ready again', async () => {
    const sup = supervise([await fixture('victim')], { backoff: { initialMs: 100 } });
    sup.start();
    const before = await sup.waitFor('victim', 'ready', 10_000);
    const states: ServiceStatus['state'][] = [];
    sup.on('state', (s) => states.push(s.state));
    const killed = sup.kill('victim', 'SIGKILL');
    assert.equal(killed, before.pid);
    const after = await sup.waitFor('victim', (s) => s.state === 'ready' && s.pid !== before.pid, 10_000);
    assert.equal(after.restarts, 1);
    assert.equal(after.lastExit?.signal, 'SIGKILL');
    assert.equal(alive(before.pid!), false);
    assert.deepEqual(states, ['restarting', 'starting', 'ready']);
    await sup.stop();
  });

  test('notices a child that stops being ready and is ready again', async () => {
    const sup = supervise([await fixture('wobbly')]);
    sup.start();
    await sup.waitFor('wobbly', 'ready', 10_000);
    // SIGSTOP freezes it: health checks time out, but the process has not exited.
    sup.kill('wobbly', 'SIGSTOP');
    await sup.waitFor('wobbly', 'unready', 10_000);
    sup.kill('wobbly', 'SIGCONT');
    const back = await sup.waitFor('wobbly', 'ready', 10_000);
    assert.equal(back.restarts, 0);
    await sup.stop();
  });

  test('stop() SIGKILLs a child that ignores SIGTERM after the grace period', async () => {
    const sup = supervise([await fixture('stubborn', { IGNORE_SIGTERM: '1' })], { stopTimeoutMs: 500 });
    sup.start();
    const { pid } = await sup.waitFor('stubborn', 'ready', 10_000);
    const t0 = Date.now();
    await sup.stop();
    const took = Date.now() - t0;
    assert.ok(took >= 500 && took < 3_000, `stop took ${took} ms`);
    assert.equal(alive(pid!), false);
    assert.equal(sup.get('stubborn').state, 'stopped');
    assert.equal(sup.get('stubborn').lastExit?.signal, 'SIGKILL');
    assert.ok(sup.logs('stubborn').some((l) => l.includes('ignoring SIGTERM')));
  });

  test('stop() stops several children at once and cancels pending restarts', async () => {
    const sup = supervise([await fixture('a'), await fixture('b'), await fixture('c', { CRASH_AFTER_MS: '10' })], { backoff: { initialMs: 2_000 } });
    sup.start();
    await Promise.all([sup.waitFor('a', 'ready', 10_000), sup.waitFor('b', 'ready', 10_000), sup.waitFor('c', 'restarting', 10_000)]);
    const pids = [sup.get('a').pid!, sup.get('b').pid!];
    await sup.stop();
    assert.deepEqual(sup.status().map((s) => s.state), ['stopped', 'stopped', 'stopped']);
    pids.forEach((pid) => assert.equal(alive(pid), false));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(sup.get('c').state, 'stopped', 'no restart after stop');
    assert.throws(() => sup.startService('a'), /stopped/);
  });

  test('stopService / startService / restart control one child without counting crashes', async () => {
    const sup = supervise([await fixture('one'), await fixture('two')]);
    sup.start();
    await Promise.all([sup.waitFor('one', 'ready', 10_000), sup.waitFor('two', 'ready', 10_000)]);
    const first = sup.get('one').pid!;
    await sup.stopService('one');
    assert.equal(sup.get('one').state, 'stopped');
    assert.equal(sup.get('two').state, 'ready');
    sup.startService('one');
    const again = await sup.waitFor('one', 'ready', 10_000);
    assert.notEqual(again.pid, first);
    await sup.restart('two');
    const two = await sup.waitFor('two', 'ready', 10_000);
    assert.equal(two.restarts, 0);
    assert.equal(again.restarts, 0);
    await sup.stop();
  });

  test('forwards each output line with its service and stream, and keeps a tail', async () => {
    const lines: Array<[string, string, string]> = [];
    const sup = supervise([await fixture('chatty')], { onLine: (s, stream, line) => lines.push([s, stream, line]), tailLines: 2 });
    sup.start();
    await sup.waitFor('chatty', 'ready', 10_000);
    await eventually(() => lines.some(([, , l]) => l.includes('"started"')));
    assert.ok(lines.some(([s, stream, l]) => s === 'chatty' && stream === 'stderr' && l === 'a line on stderr'));
    assert.ok(lines.some(([s, stream, l]) => s === 'chatty' && stream === 'stdout' && JSON.parse(l).msg === 'started'));
    await sup.stop();
    assert.equal(sup.logs('chatty').length, 2);
  });

  test('a child without a readiness URL is ready once spawned; a command that cannot start keeps being retried', async () => {
    const sup = supervise(
      [
        { name: 'plain', command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'] },
        { name: 'missing', command: path.join(here, 'no-such-binary'), args: [] },
      ],
      { backoff: { initialMs: 20, maxMs: 40 } },
    );
    sup.start();
    assert.equal(sup.get('plain').state, 'ready');
    await sup.waitFor('missing', (s) => s.restarts >= 2, 5_000);
    assert.ok(sup.logs('missing').some((l) => l.includes('failed to spawn')));
    await sup.stop();
  });

  test('children do not outlive a supervisor that is SIGKILLed', async () => {
    const childPid = await orphanChild({});
    await eventually(() => !alive(childPid), 5_000);
  });

  test('a child whose graceful exit hangs after the supervisor died is killed by the watchdog', async () => {
    const childPid = await orphanChild({ BLOCK_ON_SIGTERM: '1', SHUTDOWN_GRACE_MS: '100' });
    await new Promise((r) => setTimeout(r, 2_000));
    assert.ok(alive(childPid), 'blocked, so still there before the grace has passed');
    await eventually(() => !alive(childPid), 10_000);
  });
});
