import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'nats';
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

export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
/** The skip message of NATS tests when no JetStream server runs. */
export const NATS_MISSING = 'needs NATS JetStream at 127.0.0.1:4222 (or set NATS_URL)';

/** Whether a NATS server with JetStream answers at `url`. */
export async function jetStreamReachable(url = NATS_URL): Promise<boolean> {
  try {
    const nc = await connect({ servers: url, timeout: 2000, maxReconnectAttempts: 0 });
    try {
      await (await nc.jetstreamManager()).getAccountInfo();
      return true;
    } finally {
      await nc.close();
    }
  } catch {
    return false;
  }
}

/** Deletes the streams a NATS bus made with this stream prefix (`<prefix>_EVENTS`, `<prefix>_DLQ`). */
export async function deleteNatsStreams(streamPrefix: string, url = NATS_URL): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await nc.jetstreamManager();
    for (const s of [`${streamPrefix}_EVENTS`, `${streamPrefix}_DLQ`]) await jsm.streams.delete(s).catch(() => false);
  } finally {
    await nc.close();
  }
}

/**
 * A `BUS_URL` of an isolated backend for a service under test, removed by `cleanup`: a bus database of its own
 * (pg-boss), or streams of their own on the NATS server (`?streams=<prefix>`).
 */
export async function testBusUrl(engine: 'pg-boss' | 'nats', cleanup: (fn: () => Promise<void>) => void): Promise<string> {
  if (engine === 'pg-boss') {
    const busDb = await createTestDatabase('bus');
    cleanup(() => busDb.drop());
    return busDb.url;
  }
  const prefix = `T${randomBytes(5).toString('hex').toUpperCase()}`;
  cleanup(() => deleteNatsStreams(prefix));
  return `${NATS_URL}?streams=${prefix}`;
}
