import { setTimeout as sleep } from 'node:timers/promises';
import { createDb, type Db } from '../../src/data/db.ts';
import { migrate } from '../../src/data/migrate.ts';
import { createLogger, type Logger } from '../../src/log/logger.ts';
import { createTestDatabase, type TestDatabase } from '../../src/testing/postgres.ts';

export { sleep };

/** Quiet unless LOG_LEVEL is set: failures are reported by assertions, logs are for debugging them. */
export const testLog: Logger = createLogger({ service: 'messaging-test', level: process.env.LOG_LEVEL ?? 'silent' });

/** Polls until `check` returns a truthy value; fails with `what` after `timeoutMs` (generous: CI machines are slow). */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 20_000): Promise<NonNullable<Awaited<T>>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<Awaited<T>>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    }
    await sleep(20);
  }
}

/** A migrated service database (outbox + inbox tables), dropped by `cleanup`. */
export async function serviceDatabase(prefix: string, cleanup: (fn: () => Promise<void>) => void): Promise<Db> {
  const tdb: TestDatabase = await createTestDatabase(prefix);
  const db = createDb(tdb.url, { max: 5 });
  cleanup(async () => {
    await db.close();
    await tdb.drop();
  });
  await migrate(db);
  return db;
}

/** Runs registered cleanups in reverse order, continuing past failures. */
export function cleanupStack() {
  const fns: (() => Promise<void>)[] = [];
  return {
    add: (fn: () => Promise<void>) => void fns.push(fn),
    async run() {
      const errors: unknown[] = [];
      for (const fn of fns.reverse()) {
        try {
          await fn();
        } catch (err) {
          errors.push(err);
        }
      }
      fns.length = 0;
      if (errors.length) throw new AggregateError(errors, 'cleanup failed');
    },
  };
}
