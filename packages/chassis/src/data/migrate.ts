import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { Db } from './db.ts';

/** Chassis tables every service gets (outbox, inbox) are applied before the service's own migrations. */
const CHASSIS_MIGRATIONS = fileURLToPath(new URL('./migrations/', import.meta.url));

// A fixed key: one service database, one migrator at a time, whatever the number of instances starting.
const MIGRATION_LOCK_KEY = 727_274_001;

export interface MigrationResult {
  applied: string[];
}

async function listSql(dir: string, prefix: string): Promise<{ name: string; file: string }[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  return files.map((f) => ({ name: `${prefix}${f}`, file: path.join(dir, f) }));
}

/**
 * Applies pending `*.sql` files in name order, each in its own transaction, under a session advisory lock so
 * concurrently starting instances don't race. Applied names are recorded in `schema_migrations`.
 */
export async function migrate(db: Db, serviceDir?: string | URL): Promise<MigrationResult> {
  const migrations = [
    ...(await listSql(CHASSIS_MIGRATIONS, 'chassis/')),
    ...(serviceDir ? await listSql(serviceDir instanceof URL ? fileURLToPath(serviceDir) : serviceDir, '') : []),
  ];
  const client = await db.pool.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set((await client.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map((r) => r.name));
    for (const m of migrations) {
      if (done.has(m.name)) continue;
      const sql = await readFile(m.file, 'utf8');
      try {
        await client.query('BEGIN');
        await client.query(sql);
        await client.query('INSERT INTO schema_migrations (name) VALUES ($1)', [m.name]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw new Error(`migration ${m.name} failed: ${(err as Error).message}`, { cause: err });
      }
      applied.push(m.name);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {});
    client.release();
  }
  return { applied };
}
