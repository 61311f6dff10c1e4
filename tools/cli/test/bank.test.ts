import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startBank, type Bank, type StartBankOptions } from '../src/bank.ts';
import { formatSummary } from '../src/commands/up.ts';
import { freePorts } from '../src/ports.ts';
import { dropDatabases } from '../src/postgres.ts';
import { PROCESSES, PROCESS_NAMES, SERVICES, SERVICE_NAMES, WORKER_NICE, type ServiceName } from '../src/services.ts';

// The runner's own wiring, with a fake service standing in for every real one (the real bank is the e2e suite's).
const here = path.dirname(fileURLToPath(import.meta.url));
const FAKE = path.join(here, 'fixtures', 'fake-service.ts');
const EXTERNAL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const dirs: string[] = [];
const banks: Bank[] = [];
after(async () => {
  await Promise.all(banks.map((b) => b.stop({ dropDatabases: true })));
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'simplebank-cli-bank-'));
  dirs.push(d);
  return d;
}

async function start(options: StartBankOptions): Promise<Bank> {
  const bank = await startBank({ ports: 'random', quiet: true, entry: () => FAKE, ...options });
  banks.push(bank);
  return bank;
}

async function envOf(bank: Bank, name: string): Promise<Record<string, string | undefined>> {
  const res = await fetch(`${bank.processUrls[name]}/env`);
  return (await res.json()) as Record<string, string | undefined>;
}

async function databases(serverUrl: string, like: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: serverUrl });
  await c.connect();
  try {
    const { rows } = await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY 1', [like]);
    return rows.map((r) => r.datname);
  } finally {
    await c.end();
  }
}

describe('startBank', () => {
  test('embedded: every service gets its port, database, the bus, its peers and the shared token; restarts keep them', async () => {
    const dataDir = await tempDir();
    const [pgPort] = await freePorts(1);
    const bank = await start({ dataDir, pgPort: pgPort!, env: { EXTRA: 'for-all' }, serviceEnv: { fees: { ONLY_HERE: 'yes' } } });
    assert.deepEqual(bank.services, SERVICE_NAMES);
    assert.deepEqual(bank.processes, PROCESS_NAMES);
    assert.deepEqual(bank.supervisor.status().map((s) => s.state), PROCESS_NAMES.map(() => 'ready'));
    assert.equal(new Set(Object.values(bank.urls)).size, SERVICES.length, 'distinct ports');
    assert.equal(bank.gatewayUrl, bank.urls.gateway);

    for (const { name, service, role } of PROCESSES) {
      const env = await envOf(bank, name);
      assert.equal(`http://${env.HOST}:${env.PORT}`, bank.processUrls[name]);
      if (name === service) assert.equal(bank.processUrls[name], bank.urls[service], 'a service\'s own process is at its URL');
      // orders: its API (SERVICE_ROLE=api) at its URL, the saga in orders-worker; every other service is one process.
      assert.equal(env.SERVICE_ROLE, role === 'all' ? undefined : role, `${name}: role`);
      assert.equal(env.DATABASE_URL, bank.databaseUrls[service]);
      assert.equal(env.BUS_URL, bank.busUrl);
      assert.equal(env.SERVICE_TOKEN, bank.serviceToken);
      assert.equal(env.NODE_TEST_CONTEXT, undefined, 'the test runner marker is not passed on');
      assert.equal(env.EXTRA, 'for-all');
      assert.equal(env.ONLY_HERE, service === 'fees' ? 'yes' : undefined);
      // Peers over Unix sockets: each service's own process serves on one (a worker on none), and is told its peers' sockets.
      for (const s of SERVICES) assert.equal(env[s.urlEnv], bank.peerUrls[s.name]);
      assert.equal(env.SOCKET_PATH, name === service ? bank.peerUrls[service].slice('unix:'.length) : undefined, `${name}: SOCKET_PATH`);
    }
    for (const s of SERVICES) assert.match(bank.peerUrls[s.name], /^unix:\/.+\/[a-z-]+\.sock$/);
    assert.equal(new Set(Object.values(bank.peerUrls)).size, SERVICES.length, 'distinct sockets');
    const socketDir = path.dirname(bank.peerUrls.accounts.slice('unix:'.length));
    assert.ok(existsSync(socketDir), 'the sockets\' directory exists while the bank runs');
    assert.deepEqual(PROCESSES.filter((p) => p.role !== 'all').map((p) => [p.name, p.role]), [['orders', 'api'], ['orders-worker', 'worker']]);
    // Asynchronous work yields the CPU to requests (services.ts, WORKER_NICE).
    const niceness = Object.fromEntries(bank.supervisor.status().map((s) => [s.name, os.getPriority(s.pid!)]));
    assert.deepEqual(niceness, Object.fromEntries(PROCESS_NAMES.map((n) => [n, ['orders-worker', 'market', 'fees'].includes(n) ? WORKER_NICE : 0])));
    // What `npm start` prints: a line per process with its own URL (the worker's too).
    const summary = formatSummary(bank.gatewayUrl, bank.supervisor.status(), bank.processUrls).split('\n');
    for (const name of PROCESS_NAMES) {
      assert.ok(summary.some((l) => l.trim().startsWith(`${name} `) && l.includes(` ${bank.processUrls[name]} `) && l.endsWith('ready')), `${name} in ${summary.join('\n')}`);
    }
    assert.equal(bank.databaseUrls.gateway, undefined, 'the gateway is stateless');
    // The embedded server is reached over its unix socket (`?host=`); the database is what matters.
    assert.equal(new URL(bank.busUrl).pathname, '/simplebank_bus');
    assert.deepEqual(await databases(bank.serverUrl, 'simplebank_%'), [
      'simplebank_accounts', 'simplebank_bus', 'simplebank_customers', 'simplebank_fees', 'simplebank_market', 'simplebank_market_data', 'simplebank_orders',
    ]);

    await assert.rejects(start({ dataDir, pgPort: pgPort! }), /already running/);

    const { serviceToken, serverUrl } = bank;
    const pids = bank.supervisor.status().map((s) => s.pid!);
    await bank.stop();
    assert.ok(!existsSync(path.join(dataDir, 'cli.pid')), 'lock released');
    assert.ok(!existsSync(socketDir), 'the sockets\' directory is removed');
    pids.forEach((pid) => assert.throws(() => process.kill(pid, 0)));

    const again = await start({ dataDir, pgPort: pgPort!, services: ['accounts'] });
    assert.equal(again.serviceToken, serviceToken, 'the token survives a restart');
    assert.equal(again.serverUrl, serverUrl);
    const accounts = await envOf(again, 'accounts');
    assert.equal(accounts.SERVICE_TOKEN, serviceToken);
    // A peer this runner did not start is given its TCP URL (it may be running elsewhere); the one it started, its socket.
    assert.match(accounts.ACCOUNTS_URL!, /^unix:/);
    assert.equal(accounts.FEES_URL, again.urls.fees);
    await again.stop();

    // Switched off, every peer is at its TCP URL and nothing serves on a socket.
    const tcp = await start({ dataDir, pgPort: pgPort!, services: ['accounts', 'fees'], sockets: false });
    assert.deepEqual(tcp.peerUrls, tcp.urls);
    const fees = await envOf(tcp, 'fees');
    assert.equal(fees.ACCOUNTS_URL, tcp.urls.accounts);
    assert.equal(fees.SOCKET_PATH, undefined);
    await tcp.stop();
  });

  test('external server: databases carry the prefix and can be dropped on stop', async (t) => {
    const reachable = await databases(EXTERNAL, 'x').then(() => true, () => false);
    if (!reachable) return t.skip('no PostgreSQL on 127.0.0.1:5432');
    const prefix = `t${Math.random().toString(36).slice(2, 8)}_`;
    const bank = await start({ dataDir: await tempDir(), databaseUrl: EXTERNAL, databasePrefix: prefix, services: ['gateway', 'accounts'] });
    assert.equal(bank.serverUrl, EXTERNAL);
    assert.match(bank.databaseUrls.accounts!, new RegExp(`/${prefix}simplebank_accounts$`));
    assert.match(bank.busUrl, new RegExp(`/${prefix}simplebank_bus$`));
    assert.deepEqual(await databases(EXTERNAL, `${prefix}%`), [`${prefix}simplebank_accounts`, `${prefix}simplebank_bus`]);
    await bank.stop({ dropDatabases: true });
    assert.deepEqual(await databases(EXTERNAL, `${prefix}%`), []);
  });

  test('services that never become ready are named, with the tail of their logs, and nothing is left running', async (t) => {
    const reachable = await databases(EXTERNAL, 'x').then(() => true, () => false);
    if (!reachable) return t.skip('no PostgreSQL on 127.0.0.1:5432');
    const dataDir = await tempDir();
    const prefix = `t${Math.random().toString(36).slice(2, 8)}_`;
    const lines: string[] = [];
    let error: Error | undefined;
    try {
      await startBank({
        dataDir, ports: 'random', write: (l) => lines.push(l), json: true, entry: () => FAKE, databaseUrl: EXTERNAL, databasePrefix: prefix,
        // Generous: on a loaded machine even the healthy fake needs a few seconds to answer its first probe.
        services: ['fees', 'market'], serviceEnv: { market: { NOT_READY: '1' } }, readyTimeoutMs: 10_000,
        supervisor: { healthPollMs: 100 },
      });
    } catch (err) {
      error = err as Error;
    }
    assert.ok(error, 'start-up fails');
    assert.match(error.message, /^not ready after 10 s: market\n/);
    assert.match(error.message, /market: starting, restarts 0\n.*fake service listening/);
    assert.ok(!existsSync(path.join(dataDir, 'cli.pid')), 'lock released');
    const ports = lines.flatMap((l) => (l.startsWith('{') ? [(JSON.parse(l) as { port: number }).port] : []));
    assert.equal(ports.length, 2, 'both services ran');
    for (const port of ports) await assert.rejects(fetch(`http://127.0.0.1:${port}/health/live`), 'stopped');
    await dropDatabases(EXTERNAL, ['fees', 'market', 'bus'].map((n) => `${prefix}simplebank_${n}`));
  });

  test('rejects what it cannot run before starting anything', async () => {
    await assert.rejects(startBank({ quiet: true, databasePrefix: 'Bad-Prefix' }), /databasePrefix/);
    await assert.rejects(startBank({ quiet: true, services: ['nope' as ServiceName] }), /unknown service: nope/);
    await assert.rejects(startBank({ quiet: true, services: ['fees'], entry: () => '/nonexistent/main.ts' }), /not built yet/);
  });
});
