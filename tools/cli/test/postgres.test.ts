import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePorts } from '../src/ports.ts';
import { createDatabases, databaseUrl, dropDatabases, ensurePostgres, redactUrl } from '../src/postgres.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const EXTERNAL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'simplebank-cli-pg-'));
  dirs.push(d);
  return d;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('embedded PostgreSQL', () => {
  test('initialises once, creates missing databases, and keeps data across restarts', async () => {
    const dataDir = await tempDir();
    const [port] = await freePorts(1);
    const first = await ensurePostgres({ dataDir, port: port! });
    assert.equal(first.embedded, true);
    const versionFile = path.join(dataDir, 'pg', 'PG_VERSION');
    const initialisedAt = (await stat(versionFile)).mtimeMs;

    assert.deepEqual(await createDatabases(first.url, ['simplebank_accounts', 'simplebank_bus']), ['simplebank_accounts', 'simplebank_bus']);
    assert.deepEqual(await createDatabases(first.url, ['simplebank_accounts', 'simplebank_bus']), [], 'idempotent');
    const accounts = databaseUrl(first.url, 'simplebank_accounts');
    await query(accounts, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives')");
    await first.stop();
    assert.equal(await accepting(port!), false, 'stopped');
    assert.ok(!existsSync(path.join(dataDir, 'pg', 'postmaster.pid')), 'clean shutdown');

    const second = await ensurePostgres({ dataDir, port: port! });
    try {
      assert.equal(second.url, first.url, 'same credentials after a restart');
      assert.equal((await stat(versionFile)).mtimeMs, initialisedAt, 'not initialised again');
      assert.deepEqual(await query(accounts, 'SELECT v FROM kept'), [{ v: 'survives' }]);
      const mode = (await stat(path.join(dataDir, 'pg-password'))).mode & 0o777;
      assert.equal(mode, 0o600);
      const { max_connections } = (await query<{ max_connections: string }>(second.url, 'SHOW max_connections'))[0]!;
      assert.ok(Number(max_connections) >= 300);
    } finally {
      await second.stop();
    }
  });

  test('takes over a server left running by a run that died', async () => {
    const dataDir = await tempDir();
    const [port] = await freePorts(1);
    const crashed = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures', 'pg-orphan.ts'), dataDir, String(port)], {
      env: { ...process.env, NODE_TEST_CONTEXT: undefined },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const orphanPid = await new Promise<number>((resolve, reject) => {
      let out = '';
      crashed.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^(\d+)\n/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      crashed.once('exit', () => reject(new Error('fixture exited before the server was up')));
    });
    crashed.kill('SIGKILL');
    await new Promise((r) => crashed.once('exit', r));
    assert.ok(alive(orphanPid), 'the server outlived its parent');

    const server = await ensurePostgres({ dataDir, port: port! });
    try {
      assert.equal(alive(orphanPid), false, 'the leftover was stopped');
      assert.deepEqual(await query(server.url, 'SELECT 1 AS one'), [{ one: 1 }]);
      const pidFile = await readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8');
      assert.notEqual(Number(pidFile.split('\n')[0]), orphanPid);
    } finally {
      await server.stop();
    }
  });
});

describe('external PostgreSQL', async () => {
  const reachable = await query(EXTERNAL, 'SELECT 1').then(() => true, () => false);

  test('is used as it is; prefixed databases are created and dropped', { skip: !reachable && `no server at ${redactUrl(EXTERNAL)}` }, async () => {
    const server = await ensurePostgres({ databaseUrl: EXTERNAL, dataDir: await tempDir() });
    assert.equal(server.embedded, false);
    const prefix = `t${Math.random().toString(36).slice(2, 8)}_`;
    const names = [`${prefix}simplebank_orders`, `${prefix}simplebank_bus`];
    try {
      assert.deepEqual(await createDatabases(server.url, names), names);
      // Two runs racing to create the same databases both succeed.
      await Promise.all([createDatabases(server.url, names), createDatabases(server.url, names)]);
      const rows = await query<{ datname: string }>(EXTERNAL, `SELECT datname FROM pg_database WHERE datname LIKE '${prefix}%' ORDER BY 1`);
      assert.deepEqual(rows.map((r) => r.datname), [...names].sort());
    } finally {
      await dropDatabases(server.url, names);
      await server.stop();
    }
    const left = await query(EXTERNAL, `SELECT datname FROM pg_database WHERE datname LIKE '${prefix}%'`);
    assert.equal(left.length, 0);
  });

  test('an unreachable server is a clear error that does not show the password', async () => {
    const [port] = await freePorts(1);
    await assert.rejects(
      ensurePostgres({ databaseUrl: `postgres://postgres:hunter2@127.0.0.1:${port}/postgres`, dataDir: await tempDir() }),
      (err: Error) => err.message.includes('cannot reach PostgreSQL at postgres://postgres:***@127.0.0.1') && !err.message.includes('hunter2'),
    );
  });

  test('refuses database names that would need quoting', async () => {
    await assert.rejects(createDatabases(EXTERNAL, ['bad"name']), /invalid database name/);
  });
});
