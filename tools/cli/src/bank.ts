import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, defaultDataDir, lockDataDir, serviceToken } from './datadir.ts';
import { compileEntries } from './compile.ts';
import { createFormatter } from './logs.ts';
import { LogFiles, logDir } from './log-files.ts';
import { NODE_TUNING } from './node-tuning.ts';
import { freePorts, portFree } from './ports.ts';
import { DEFAULT_PG_PORT, createDatabases, databaseUrl, dropDatabases, ensurePostgres, redactUrl, type PostgresServer } from './postgres.ts';
import { BUS_DATABASE, HOST, PROCESSES, SERVICES, SERVICE_NAMES, processesOf, serviceInfo, type ProcessInfo, type ServiceName } from './services.ts';
import { Supervisor, type ServiceSpec, type SupervisorOptions } from './supervisor.ts';

/**
 * Runs the whole bank: a PostgreSQL (embedded or yours), one database per service plus the bus's,
 * then every service as a supervised child process, and waits until all of them are ready.
 * Options fall back to env (SIMPLEBANK_DATA_DIR, SIMPLEBANK_DATABASE_URL, SIMPLEBANK_PG_PORT, BUS_URL),
 * then to the defaults of `npm start`.
 */

export interface StartBankOptions {
  /** Holds the embedded cluster, the service token and the lock. Default `<repo>/.simplebank`. */
  dataDir?: string;
  /** `default`: 8080…8086. `random`: free ports, for tests running side by side. */
  ports?: 'default' | 'random';
  /** An existing server (`postgres://postgres@127.0.0.1:5432/postgres`) instead of the embedded one. */
  databaseUrl?: string;
  /** Prepended to every database name, so parallel runs on one server don't collide. [a-z0-9_]. */
  databasePrefix?: string;
  /** Embedded server port (default 5433). */
  pgPort?: number;
  /** Embedded server: extra settings (`-c name=value`), e.g. `shared_preload_libraries` for a diagnosis. */
  pgSettings?: Record<string, string>;
  /** Default: the bus database on the same server (pg-boss). `nats://…` for JetStream. */
  busUrl?: string;
  /** Extra env for every service (the parent's env is passed through as well). */
  env?: Record<string, string>;
  /** Extra env for one service, applied last. */
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  /** Which services to run (default: every one whose services/<name>/src/main.ts exists). */
  services?: ServiceName[];
  /** Print nothing: neither progress nor service logs (they are still kept: supervisor.logs()). */
  quiet?: boolean;
  /** Service log lines as raw JSON instead of the readable form. */
  json?: boolean;
  /**
   * Also append every service's output to `<dataDir>/logs/<service>.log` (JSON lines, rotated), which
   * `simplebank logs` reads. Default true.
   */
  logFiles?: boolean;
  /** Where progress and log lines go (default stdout). */
  write?: (line: string) => void;
  readyTimeoutMs?: number;
  supervisor?: Pick<SupervisorOptions, 'backoff' | 'stopTimeoutMs' | 'healthPollMs'>;
  /** Abort start-up (e.g. Ctrl-C while waiting): everything started so far is stopped. */
  signal?: AbortSignal;
  /** The script a service runs (default `<repo>/services/<name>/src/main.ts`); for testing the runner itself. */
  entry?: (service: ServiceName) => string;
  /**
   * Run each service from an esbuild bundle (compile.ts), as production would, rather than its sources under tsx.
   * Default true, except with a custom `entry` or SIMPLEBANK_FROM_SOURCE=1.
   */
  compiled?: boolean;
  /**
   * Services this runner starts call each other over Unix domain sockets (each also serves on its SOCKET_PATH, and
   * is given its peers as `unix:<path>`), not TCP loopback: the same HTTP for a fraction of the CPU a call (docs/
   * benchmarks.md). Their TCP ports serve as always (the gateway's API, health checks, the CLI). Default true;
   * false or SIMPLEBANK_SOCKETS=0: peers over TCP.
   */
  sockets?: boolean;
}

export interface Bank {
  /** Base URL of every service, including ones not running (peers are told all of them). */
  urls: Record<ServiceName, string>;
  /**
   * What each service is given as its peers' base URLs (`<SERVICE>_URL`): `unix:<path>` for a service this runner
   * started (unless `sockets: false`), else the TCP URL in `urls`.
   */
  peerUrls: Record<ServiceName, string>;
  gatewayUrl: string;
  /** The shared service credential (for tests calling service-only routes). Never print it. */
  serviceToken: string;
  /** Each running stateful service's database URL (with credentials), e.g. to check invariants. */
  databaseUrls: Partial<Record<ServiceName, string>>;
  busUrl: string;
  /** Admin URL of the server the databases live on. */
  serverUrl: string;
  dataDir: string;
  services: ServiceName[];
  /** The supervised processes: each service's own, and the worker of a service that has one (orders-worker). */
  processes: string[];
  /** Each process's own URL (a worker's serves health, metrics and the admin routes). */
  processUrls: Record<string, string>;
  supervisor: Supervisor;
  /** Services first (graceful, then SIGKILL after the grace), then an embedded PostgreSQL. Idempotent. */
  stop(options?: { dropDatabases?: boolean }): Promise<void>;
}

const GUARD_SOURCE = path.join(REPO_ROOT, 'tools/cli/src/child-guard.ts');
const GUARD = pathToFileURL(GUARD_SOURCE).href;

export async function startBank(options: StartBankOptions = {}): Promise<Bank> {
  const env = process.env;
  const dataDir = path.resolve(options.dataDir ?? env.SIMPLEBANK_DATA_DIR ?? defaultDataDir());
  const externalUrl = options.databaseUrl ?? (env.SIMPLEBANK_DATABASE_URL || undefined);
  const prefix = options.databasePrefix ?? '';
  if (!/^[a-z0-9_]*$/.test(prefix)) throw new Error(`databasePrefix must match [a-z0-9_]*: ${JSON.stringify(prefix)}`);
  const write = options.quiet ? () => {} : (options.write ?? ((line: string) => process.stdout.write(`${line}\n`)));
  const say = (msg: string) => write(`[simplebank] ${msg}`);
  const entry = options.entry ?? ((name: ServiceName) => path.join(REPO_ROOT, 'services', name, 'src', 'main.ts'));
  const services = chooseServices(options.services, entry, say);
  const processes = processesOf(services);

  const ports = await choosePorts(options.ports ?? 'default', processes);
  // Every process's URL by name (a worker serves health, metrics and the admin routes); a service's URL is its own process's.
  const processUrls: Record<string, string> = Object.fromEntries(PROCESSES.map((p) => [p.name, `http://${HOST}:${ports[p.name]}`]));
  const urls = Object.fromEntries(SERVICES.map((s) => [s.name, processUrls[s.name]!])) as Record<ServiceName, string>;

  const cleanup: Array<() => Promise<void>> = [];
  const undo = async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => {});
  };
  try {
    cleanup.push(await lockDataDir(dataDir));
    // Under the temporary directory, not the data folder: a socket's path must stay short (108 bytes on Linux).
    const socketDir = (options.sockets ?? env.SIMPLEBANK_SOCKETS !== '0') ? await mkdtemp(path.join(os.tmpdir(), 'simplebank-')) : undefined;
    if (socketDir) cleanup.push(() => rm(socketDir, { recursive: true, force: true }));
    const socketOf = (service: ServiceName) => (socketDir && services.includes(service) ? path.join(socketDir, `${service}.sock`) : undefined);
    const peerUrls = Object.fromEntries(
      SERVICES.map((s) => {
        const socket = socketOf(s.name);
        return [s.name, socket ? `unix:${socket}` : urls[s.name]];
      }),
    ) as Record<ServiceName, string>;
    const token = await serviceToken(dataDir);
    abortIfAsked(options.signal);

    say(externalUrl ? `using PostgreSQL at ${redactUrl(externalUrl)}` : `starting embedded PostgreSQL (data in ${dataDir})`);
    const pgPort = options.pgPort ?? (env.SIMPLEBANK_PG_PORT ? Number(env.SIMPLEBANK_PG_PORT) : DEFAULT_PG_PORT);
    const server: PostgresServer = await ensurePostgres({
      dataDir,
      port: pgPort,
      log: say,
      ...(externalUrl ? { databaseUrl: externalUrl } : {}),
      ...(options.pgSettings ? { settings: options.pgSettings } : {}),
    });
    cleanup.push(() => server.stop());
    abortIfAsked(options.signal);

    const dbNames: Partial<Record<ServiceName, string>> = {};
    for (const name of services) {
      const db = serviceInfo(name).database;
      if (db) dbNames[name] = `${prefix}${db}`;
    }
    const busDb = `${prefix}${BUS_DATABASE}`;
    const allDbs = [...Object.values(dbNames), busDb];
    const created = await createDatabases(server.url, allDbs);
    if (created.length > 0) say(`created databases: ${created.join(', ')}`);
    const databaseUrls = Object.fromEntries(Object.entries(dbNames).map(([s, db]) => [s, databaseUrl(server.url, db)])) as Partial<Record<ServiceName, string>>;
    const busUrl = options.busUrl ?? (env.BUS_URL || databaseUrl(server.url, busDb));

    const compiled = options.compiled ?? (options.entry === undefined && env.SIMPLEBANK_FROM_SOURCE !== '1');
    let launch = (name: ServiceName) => ({ args: ['--import', 'tsx', '--import', GUARD, path.relative(REPO_ROOT, entry(name))] });
    if (compiled) {
      const bundles = await compileEntries({ 'child-guard': GUARD_SOURCE, ...Object.fromEntries(services.map((name) => [name, entry(name)])) });
      cleanup.push(() => bundles.cleanup());
      const guard = pathToFileURL(bundles.files['child-guard']!).href;
      launch = (name) => ({ args: ['--enable-source-maps', '--import', guard, bundles.files[name]!] });
    }

    const formatter = createFormatter({ names: processes.map((p) => p.name), json: options.json ?? false, colour: !options.write && process.stdout.isTTY === true && !env.NO_COLOR });
    // Closed after the supervisor has stopped (cleanup runs in reverse), so the services' last lines are kept.
    const files = options.logFiles === false ? undefined : new LogFiles({ dir: logDir(dataDir) });
    if (files) cleanup.push(() => files.close());
    const supervisor = new Supervisor(
      processes.map((proc) =>
        specFor(proc, { peerUrls, socketPath: proc.name === proc.service ? socketOf(proc.service) : undefined, ports, processUrls, token, busUrl, databaseUrls, options, args: launch(proc.service).args }),
      ),
      {
        ...options.supervisor,
        onLine: (service, stream, line) => {
          files?.write(service, stream, line);
          // Quiet: nobody sees the terminal's form of a line, so it is not made (the file keeps it as written).
          if (!options.quiet) write(formatter(service, stream, line));
        },
      },
    );
    cleanup.push(() => supervisor.stop());
    supervisor.start();
    say(`starting ${processes.map((p) => p.name).join(', ')}`);
    if (files) say(`service logs are also kept in ${files.dir} (simplebank logs)`);
    await waitUntilReady(supervisor, processes.map((p) => p.name), options.readyTimeoutMs ?? 60_000, options.signal);

    let stopping: Promise<void> | undefined;
    return {
      urls,
      peerUrls,
      gatewayUrl: urls.gateway,
      serviceToken: token,
      databaseUrls,
      busUrl,
      serverUrl: server.url,
      dataDir,
      services,
      processes: processes.map((p) => p.name),
      processUrls: Object.fromEntries(processes.map((p) => [p.name, processUrls[p.name]!])),
      supervisor,
      stop(stopOptions = {}) {
        stopping ??= (async () => {
          await supervisor.stop();
          if (stopOptions.dropDatabases) await dropDatabases(server.url, allDbs).catch(() => {});
          await undo();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await undo();
    throw err;
  }
}

function chooseServices(requested: ServiceName[] | undefined, entry: (name: ServiceName) => string, say: (m: string) => void): ServiceName[] {
  const present = (name: ServiceName) => existsSync(entry(name));
  if (requested) {
    requested.forEach(serviceInfo);
    const missing = requested.filter((n) => !present(n));
    if (missing.length > 0) throw new Error(`not built yet (no ${path.relative(REPO_ROOT, entry(missing[0]!))}): ${missing.join(', ')}`);
    return [...new Set(requested)];
  }
  const found = SERVICE_NAMES.filter(present);
  const missing = SERVICE_NAMES.filter((n) => !present(n));
  if (missing.length > 0) say(`not built yet, skipping: ${missing.join(', ')}`);
  if (found.length === 0) throw new Error('no service found under services/*/src/main.ts');
  return found;
}

/** A port for every process of every service, running or not (peers are told every service's URL). */
async function choosePorts(mode: 'default' | 'random', running: ProcessInfo[]): Promise<Record<string, number>> {
  if (mode === 'random') {
    const free = await freePorts(PROCESSES.length);
    return Object.fromEntries(PROCESSES.map((p, i) => [p.name, free[i]!]));
  }
  const ports = Object.fromEntries(PROCESSES.map((p) => [p.name, p.port]));
  // A taken port would only show as a crash loop; say which and why up front.
  const busy: string[] = [];
  for (const { name } of running) if (!(await portFree(ports[name]!, HOST))) busy.push(`${name} (${ports[name]})`);
  if (busy.length > 0) throw new Error(`ports already in use: ${busy.join(', ')}; is another SimpleBank running? (or use ports: 'random')`);
  return ports;
}

interface SpecContext {
  peerUrls: Record<ServiceName, string>;
  /** Where the process also serves (SOCKET_PATH): a service's own process, when sockets are on. */
  socketPath: string | undefined;
  /** By process name. */
  ports: Record<string, number>;
  processUrls: Record<string, string>;
  token: string;
  busUrl: string;
  databaseUrls: Partial<Record<ServiceName, string>>;
  options: StartBankOptions;
  /** Node's arguments: preloads and the script. */
  args: string[];
}

/**
 * Tuning the runner gives a service unless the environment says otherwise: the Node.js flags of every service
 * (node-tuning.ts), and for orders and accounts larger pools: orders runs its saga handlers with a connection each
 * (their concurrency follows DB_POOL_MAX), and accounts answers the saga's calls.
 */
const SERVICE_DEFAULT_ENV: Partial<Record<ServiceName, Record<string, string>>> = {
  orders: { DB_POOL_MAX: '64' },
  accounts: { DB_POOL_MAX: '32' },
};

function specFor(proc: ProcessInfo, ctx: SpecContext): ServiceSpec {
  const name = proc.service;
  // FAULTS_ENABLED: a local bank is for trying things, `simplebank fault` and the chaos tests included (never in
  // production; the admin routes still need the service credential). The environment can switch it off.
  const env: Record<string, string | undefined> = { NODE_OPTIONS: NODE_TUNING, FAULTS_ENABLED: 'true', ...SERVICE_DEFAULT_ENV[name], ...process.env, ...ctx.options.env };
  // Set by `node --test` in test files; a child that inherits it would think it is a test runner child.
  delete env.NODE_TEST_CONTEXT;
  // The parent's own DATABASE_URL must not leak into a stateless service.
  delete env.DATABASE_URL;
  for (const s of SERVICES) env[s.urlEnv] = ctx.peerUrls[s.name];
  // Only the runner's own socket: one inherited from the parent's environment would be another bank's.
  delete env.SOCKET_PATH;
  if (ctx.socketPath) env.SOCKET_PATH = ctx.socketPath;
  Object.assign(env, {
    PORT: String(ctx.ports[proc.name]),
    HOST,
    // A service with a worker: its own process serves requests, the worker does the rest (services.ts).
    ...(proc.role !== 'all' ? { SERVICE_ROLE: proc.role, SERVICE_INSTANCE: proc.name } : {}),
    BUS_URL: ctx.busUrl,
    SERVICE_TOKEN: ctx.token,
    ...(ctx.databaseUrls[name] ? { DATABASE_URL: ctx.databaseUrls[name] } : {}),
    ...ctx.options.serviceEnv?.[name],
  });
  return {
    name: proc.name,
    command: process.execPath,
    args: ctx.args,
    cwd: REPO_ROOT,
    env,
    readyUrl: `${ctx.processUrls[proc.name]}/health/ready`,
    ...(proc.nice ? { nice: proc.nice } : {}),
  };
}

async function waitUntilReady(supervisor: Supervisor, services: string[], timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
  const aborted = new Promise<never>((_, reject) => {
    if (!signal) return;
    const onAbort = () => reject(new Error('start-up aborted'));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => {});
  const results = await Promise.race([Promise.allSettled(services.map((s) => supervisor.waitFor(s, 'ready', timeoutMs))), aborted]);
  const failed = services.filter((_, i) => results[i]!.status === 'rejected');
  if (failed.length === 0) return;
  const details = failed.map((name) => {
    const s = supervisor.get(name);
    const logs = supervisor.logs(name).slice(-15).map((l) => `    ${l}`).join('\n') || '    (no output)';
    return `  ${name}: ${s.state}, restarts ${s.restarts}${s.lastExit ? `, last exit ${s.lastExit.signal ?? `code ${s.lastExit.code}`}` : ''}\n${logs}`;
  });
  throw new Error(`not ready after ${Math.round(timeoutMs / 1000)} s: ${failed.join(', ')}\n${details.join('\n')}`);
}

function abortIfAsked(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new Error('start-up aborted');
}
