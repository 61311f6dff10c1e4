import pg from 'pg';

/** Anything that can run a query: the pool or a transaction's client. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

export interface Db extends Queryable {
  readonly pool: pg.Pool;
  /** Runs `fn` in a transaction; commits if it resolves, rolls back if it throws. */
  tx<T>(fn: (client: Queryable) => Promise<T>): Promise<T>;
  /** One typed row or undefined. */
  one<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R | undefined>;
  many<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

// NUMERIC and BIGINT come back as strings; we keep them that way (money is never a float). COUNT(*) is BIGINT too.
export function createDb(connectionString: string, options: { max?: number; applicationName?: string } = {}): Db {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 5_000,
  });
  // An idle client losing its connection (server restart) must not crash the process; the pool replaces it.
  pool.on('error', () => {});

  const db: Db = {
    pool,
    query: (text, values) => pool.query(text, values as unknown[]),
    async one(text, values) {
      const r = await pool.query(text, values as unknown[]);
      return r.rows[0];
    },
    async many(text, values) {
      const r = await pool.query(text, values as unknown[]);
      return r.rows;
    },
    async tx(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(client as Queryable);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    },
    async ping() {
      await pool.query('SELECT 1');
    },
    async close() {
      await pool.end();
    },
  };
  return db;
}
