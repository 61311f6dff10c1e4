import { randomUUID } from 'node:crypto';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, createDb, isUpstreamError, migrate, startService, type Client, type Db, type RunningService } from '@simplebank/chassis';
import { createTestDatabase, recordEvents, type EventRecorder } from '@simplebank/chassis/testing';
import { accountsContract } from '../src/contract.ts';
import { service } from '../src/service.ts';

export const SERVICE_TOKEN = 'test-token-0123456789';

export interface Harness {
  running: RunningService;
  url: string;
  accounts: Client<typeof accountsContract>;
  /** Direct access to the service's database, to check what the API does not show (raw rows). */
  sql: Db;
  busUrl: string;
  /** Every event accounts published, as a subscriber on the bus got it. */
  events: EventRecorder;
  stop(): Promise<void>;
}

/** The real service on fresh databases, over real HTTP. */
export async function startAccounts(): Promise<Harness> {
  const db = await createTestDatabase('accounts');
  const bus = await createTestDatabase('bus');
  const running = await startService(service, { PORT: '0', DATABASE_URL: db.url, BUS_URL: bus.url, SERVICE_TOKEN, LOG_LEVEL: 'silent' });
  const accounts = createClient(accountsContract, { baseUrl: running.url, serviceToken: SERVICE_TOKEN });
  const sql = createDb(db.url, { max: 2 });
  const events = await recordEvents({ busUrl: bus.url, name: 'accounts-test.recorder', events: accountsContract.events });
  return {
    running: running as RunningService,
    url: running.url,
    accounts,
    sql,
    busUrl: bus.url,
    events,
    async stop() {
      await events.close();
      await accounts.close();
      await sql.close();
      await running.stop();
      await db.drop();
      await bus.drop();
    },
  };
}

/** The problem code and status of a failed call, for assertions. */
export async function failure(call: Promise<unknown>): Promise<{ status: number | undefined; code: string }> {
  try {
    await call;
  } catch (err) {
    if (isUpstreamError(err)) return { status: err.status, code: err.code };
    throw err;
  }
  throw new Error('expected the call to fail');
}

/** A new customer with a funded USD account. */
export async function fundedAccount(h: Harness, amount: string): Promise<{ accountId: string; customerId: string }> {
  const customerId = randomUUID();
  const opened = await h.accounts.openAccount({ body: { customerId } });
  if (amount !== '0.00') await h.accounts.deposit({ params: { id: opened.body.id }, query: {}, headers: { 'idempotency-key': randomUUID() }, body: { amount } });
  return { accountId: opened.body.id, customerId };
}

/** Waits for a condition reached by background work (bus deliveries), polling; fails after `limitMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, what: string, limitMs = 15_000): Promise<T> {
  const giveUp = Date.now() + limitMs;
  for (;;) {
    const result = await check();
    if (result !== undefined && result !== false) return result;
    if (Date.now() > giveUp) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// The saga's calls, as orders makes them.
export const reserveCash = (h: Harness, accountId: string, amount: string, id: string = randomUUID()) =>
  h.accounts.reserve({ params: { id }, body: { kind: 'cash', accountId, amount } });
export const reserveShares = (h: Harness, accountId: string, symbol: string, quantity: number, id: string = randomUUID()) =>
  h.accounts.reserve({ params: { id }, body: { kind: 'shares', accountId, symbol, quantity } });
export const settle = (h: Harness, id: string, side: 'buy' | 'sell', symbol: string, quantity: number, price: string, fee: string) =>
  h.accounts.settle({ params: { id }, body: { side, symbol, quantity, price, fee } });

export const MIGRATIONS = fileURLToPath(new URL('../migrations/', import.meta.url));

/** Brings `db` to where a bank from before migration `next` is: the migrations that sort before it. */
export async function migrateBefore(db: Db, next: string): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'accounts-migrations-'));
  try {
    for (const f of (await readdir(MIGRATIONS)).filter((f) => f.endsWith('.sql') && f < next)) await copyFile(path.join(MIGRATIONS, f), path.join(dir, f));
    await migrate(db, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
