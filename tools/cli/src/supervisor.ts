import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import readline from 'node:readline';

/**
 * Runs a set of child processes and keeps them running: restarts on any exit it did not ask for,
 * with exponential backoff, and tracks readiness by polling each child's health URL.
 * Generic on purpose: it knows nothing about SimpleBank (bank.ts builds the specs).
 */

export type ServiceState = 'starting' | 'ready' | 'unready' | 'restarting' | 'stopped';

export interface ServiceSpec {
  name: string;
  command: string;
  args: string[];
  cwd?: string;
  /** The child's complete environment (not merged with the parent's: the caller decides). */
  env?: Record<string, string | undefined>;
  /** Polled until it answers 200 (state `ready`), then now and then to notice `unready`. */
  readyUrl?: string;
  /** Scheduling niceness, 0 (default) to 19: how readily it yields the CPU to the others (systemd's `Nice=`). */
  nice?: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: Date;
}

export interface ServiceStatus {
  name: string;
  state: ServiceState;
  pid: number | undefined;
  /** How many times the supervisor has restarted it after an exit it did not ask for. */
  restarts: number;
  startedAt: Date | undefined;
  lastExit: ExitInfo | undefined;
}

export interface SupervisorOptions {
  backoff?: { initialMs?: number; maxMs?: number; resetAfterMs?: number };
  /** Grace between SIGTERM and SIGKILL on stop. */
  stopTimeoutMs?: number;
  readyPollMs?: number;
  healthPollMs?: number;
  /** Lines of output kept per service, for error reports. */
  tailLines?: number;
  onLine?: (service: string, stream: 'stdout' | 'stderr', line: string) => void;
}

type Events = {
  state: [ServiceStatus];
  exit: [name: string, info: ExitInfo];
};

interface Managed {
  spec: ServiceSpec;
  state: ServiceState;
  /** Whether it should be running: false once stopped on purpose, so its exit is not a crash. */
  wanted: boolean;
  child: ChildProcess | undefined;
  exited: Promise<void> | undefined;
  startedAt: number | undefined;
  lastExit: ExitInfo | undefined;
  restarts: number;
  /** Consecutive short-lived runs; drives the backoff. */
  failures: number;
  restartTimer: NodeJS.Timeout | undefined;
  pollTimer: NodeJS.Timeout | undefined;
  tail: string[];
}

export class Supervisor extends EventEmitter<Events> {
  readonly #services = new Map<string, Managed>();
  readonly #opts: Required<Omit<SupervisorOptions, 'onLine' | 'backoff'>> & {
    onLine: SupervisorOptions['onLine'];
    backoff: { initialMs: number; maxMs: number; resetAfterMs: number };
  };
  #stopping: Promise<void> | undefined;
  readonly #onParentExit = () => {
    // Last resort when the parent exits without stop(): don't leave children behind.
    for (const m of this.#services.values()) if (isRunning(m.child)) signal(m.child, 'SIGTERM');
  };

  constructor(specs: ServiceSpec[], options: SupervisorOptions = {}) {
    super();
    this.#opts = {
      stopTimeoutMs: options.stopTimeoutMs ?? 10_000,
      readyPollMs: options.readyPollMs ?? 250,
      healthPollMs: options.healthPollMs ?? 2_000,
      tailLines: options.tailLines ?? 50,
      onLine: options.onLine,
      backoff: {
        initialMs: options.backoff?.initialMs ?? 250,
        maxMs: options.backoff?.maxMs ?? 10_000,
        resetAfterMs: options.backoff?.resetAfterMs ?? 30_000,
      },
    };
    for (const spec of specs) {
      if (this.#services.has(spec.name)) throw new Error(`duplicate service name: ${spec.name}`);
      this.#services.set(spec.name, {
        spec, state: 'stopped', wanted: false, child: undefined, exited: undefined, startedAt: undefined,
        lastExit: undefined, restarts: 0, failures: 0, restartTimer: undefined, pollTimer: undefined, tail: [],
      });
    }
  }

  /** Starts every service that is not running. */
  start(): void {
    if (this.#stopping) throw new Error('supervisor is stopped');
    process.on('exit', this.#onParentExit);
    for (const m of this.#services.values()) this.#want(m);
  }

  names(): string[] {
    return [...this.#services.keys()];
  }

  status(): ServiceStatus[] {
    return [...this.#services.values()].map(snapshot);
  }

  get(name: string): ServiceStatus {
    return snapshot(this.#managed(name));
  }

  /** Last lines the service printed (stdout and stderr interleaved). */
  logs(name: string): string[] {
    return [...this.#managed(name).tail];
  }

  /** Sends a signal as an outsider would (chaos): the exit counts as a crash and is restarted. */
  kill(name: string, sig: NodeJS.Signals = 'SIGKILL'): number {
    const m = this.#managed(name);
    if (!isRunning(m.child)) throw new Error(`${name} is not running (state ${m.state})`);
    signal(m.child, sig);
    return m.child.pid!;
  }

  /** Stops one service on purpose; it stays down until startService(). */
  async stopService(name: string): Promise<void> {
    const m = this.#managed(name);
    m.wanted = false;
    await this.#terminate(m);
  }

  startService(name: string): void {
    if (this.#stopping) throw new Error('supervisor is stopped');
    this.#want(this.#managed(name));
  }

  /** Graceful restart (SIGTERM, wait, start again at once); not counted as a crash. */
  async restart(name: string): Promise<void> {
    await this.stopService(name);
    this.startService(name);
  }

  /** Resolves when the service's status satisfies `until` (a state or a predicate). */
  waitFor(name: string, until: ServiceState | ((s: ServiceStatus) => boolean), timeoutMs = 30_000): Promise<ServiceStatus> {
    const test = typeof until === 'string' ? (s: ServiceStatus) => s.state === until : until;
    const now = this.get(name);
    if (test(now)) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const onState = (s: ServiceStatus) => {
        if (s.name !== name || !test(s)) return;
        clearTimeout(timer);
        this.off('state', onState);
        resolve(s);
      };
      const timer = setTimeout(() => {
        this.off('state', onState);
        const s = this.get(name);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${name} (state ${s.state}, pid ${s.pid ?? '-'}, restarts ${s.restarts})`));
      }, timeoutMs);
      this.on('state', onState);
    });
  }

  /** SIGTERM to every child, SIGKILL to those still running after stopTimeoutMs. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      const all = [...this.#services.values()];
      for (const m of all) m.wanted = false;
      await Promise.all(all.map((m) => this.#terminate(m)));
      process.off('exit', this.#onParentExit);
    })();
    return this.#stopping;
  }

  #managed(name: string): Managed {
    const m = this.#services.get(name);
    if (!m) throw new Error(`unknown service: ${name}`);
    return m;
  }

  #want(m: Managed): void {
    m.wanted = true;
    if (isRunning(m.child) || m.restartTimer) return;
    m.failures = 0;
    this.#spawn(m);
  }

  #setState(m: Managed, state: ServiceState): void {
    if (m.state === state) return;
    m.state = state;
    this.emit('state', snapshot(m));
  }

  #spawn(m: Managed): void {
    m.restartTimer = undefined;
    const { spec } = m;
    // Own process group (detached): a terminal Ctrl-C reaches only us, and we stop children in order.
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
    });
    m.child = child;
    m.startedAt = Date.now();
    if (spec.nice && child.pid !== undefined) lowerPriority(child.pid, spec.nice);
    let done: () => void = () => {};
    m.exited = new Promise((resolve) => (done = resolve));
    let handled = false;
    const onExit = (code: number | null, sig: NodeJS.Signals | null) => {
      if (handled) return;
      handled = true;
      this.#onExit(m, child, { code, signal: sig, at: new Date() });
      done();
    };
    child.once('exit', onExit);
    child.once('error', (err) => {
      // 'error' without a pid means it never started; there will be no 'exit'.
      if (child.pid === undefined) {
        this.#record(m, 'stderr', `[supervisor] failed to spawn: ${err.message}`);
        onExit(null, null);
      }
    });
    for (const stream of ['stdout', 'stderr'] as const) {
      const input = child[stream];
      if (input) readline.createInterface({ input, crlfDelay: Infinity }).on('line', (line) => this.#record(m, stream, line));
    }
    // Emitted even when already `starting`: the snapshot carries the new pid.
    m.state = 'starting';
    this.emit('state', snapshot(m));
    if (spec.readyUrl) this.#poll(m, child, spec.readyUrl);
    else this.#setState(m, 'ready');
  }

  #record(m: Managed, stream: 'stdout' | 'stderr', line: string): void {
    m.tail.push(line);
    if (m.tail.length > this.#opts.tailLines) m.tail.shift();
    this.#opts.onLine?.(m.spec.name, stream, line);
  }

  #poll(m: Managed, child: ChildProcess, url: string): void {
    const tick = async () => {
      const ok = await probe(url);
      // The child may have exited or been replaced while the request was in flight.
      if (m.child !== child || !isRunning(child)) return;
      if (ok) this.#setState(m, 'ready');
      else if (m.state === 'ready') this.#setState(m, 'unready');
      m.pollTimer = setTimeout(tick, m.state === 'starting' ? this.#opts.readyPollMs : this.#opts.healthPollMs);
    };
    m.pollTimer = setTimeout(tick, this.#opts.readyPollMs);
  }

  #onExit(m: Managed, child: ChildProcess, info: ExitInfo): void {
    if (m.child !== child) return;
    clearTimeout(m.pollTimer);
    m.pollTimer = undefined;
    m.lastExit = info;
    m.child = undefined;
    this.emit('exit', m.spec.name, info);
    if (!m.wanted) {
      this.#setState(m, 'stopped');
      return;
    }
    const { initialMs, maxMs, resetAfterMs } = this.#opts.backoff;
    // A run that lasted a while was healthy: the next crash starts the backoff again from the bottom.
    if (m.startedAt !== undefined && info.at.getTime() - m.startedAt >= resetAfterMs) m.failures = 0;
    const delay = Math.min(initialMs * 2 ** m.failures, maxMs);
    m.failures += 1;
    m.restarts += 1;
    const why = info.signal ? `signal ${info.signal}` : `code ${info.code}`;
    this.#record(m, 'stderr', `[supervisor] exited (${why}); restarting in ${delay} ms`);
    this.#setState(m, 'restarting');
    m.restartTimer = setTimeout(() => this.#spawn(m), delay);
  }

  async #terminate(m: Managed): Promise<void> {
    clearTimeout(m.restartTimer);
    m.restartTimer = undefined;
    const child = m.child;
    if (!isRunning(child)) {
      this.#setState(m, 'stopped');
      return;
    }
    const exited = m.exited!;
    signal(child, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), this.#opts.stopTimeoutMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.#record(m, 'stderr', `[supervisor] did not stop within ${this.#opts.stopTimeoutMs} ms; killing`);
      signal(child, 'SIGKILL', true);
      await exited;
    }
  }
}

function isRunning(child: ChildProcess | undefined): child is ChildProcess {
  return child !== undefined && child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

function signal(child: ChildProcess, sig: NodeJS.Signals, group = false): void {
  try {
    // Negative pid = the child's whole process group (it is a group leader: spawned detached).
    process.kill(group ? -child.pid! : child.pid!, sig);
  } catch {
    // Already gone.
  }
}

/**
 * One readiness probe: true on a 200 within a second. node:http with a keep-alive agent rather than fetch: the
 * runner probes every process every two seconds for as long as the bank runs, and fetch (a new connection and a web
 * stream per call) made those probes most of what an idle runner spent.
 */
function probe(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: probeAgent, timeout: 1_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

const probeAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function snapshot(m: Managed): ServiceStatus {
  return {
    name: m.spec.name,
    state: m.state,
    pid: m.child?.pid,
    restarts: m.restarts,
    startedAt: m.startedAt === undefined ? undefined : new Date(m.startedAt),
    lastExit: m.lastExit,
  };
}

/**
 * Makes a child yield the CPU: its own niceness, and on Linux its session's autogroup's too. The child is a session
 * leader (detached), and where the kernel groups sessions for scheduling (`sched_autogroup_enabled`, the default on
 * desktop and many server kernels) a process's niceness only ranks it within its own session; between sessions the
 * autogroup's niceness decides (sched(7)). Best effort: a system that refuses leaves it at the default priority.
 */
function lowerPriority(pid: number, nice: number): void {
  try {
    os.setPriority(pid, nice);
  } catch {
    // not permitted here: the default priority stands
  }
  try {
    writeFileSync(`/proc/${pid}/autogroup`, String(nice));
  } catch {
    // no autogroups (not Linux, or a kernel without them), or not permitted
  }
}
