import pg from 'pg';
import { endTxSpan, runInTx, startQuerySpan, startTxSpan, trackQuery, tracedWork } from '../trace/db-spans.ts';

/** Anything that can run a query: the pool or a transaction's client. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/**
 * The client `db.tx` hands to its function: queries run in the transaction, plus two hooks around its commit.
 *
 * Round trips are what a transaction costs (on both sides of the socket), so the client saves the ones it can:
 * BEGIN travels with the first query when that query has no parameters (simple protocol: `BEGIN; <query>` is one
 * message), and statements deferred with `beforeCommit` travel with the COMMIT.
 */
export interface TxClient extends Queryable {
  readonly db: Db;
  /**
   * Runs `sql` (no parameters: inline values with `sql`/`sqlLiteral` from literal.ts) at the end of the transaction,
   * in the COMMIT's round trip, after everything the function did and in the order deferred. If it fails, the
   * transaction rolls back and `db.tx` throws, as if a query inside had failed. A function is called at the commit
   * for its SQL (empty: nothing to run), so writes made until then can be gathered into one statement.
   */
  beforeCommit(sql: string | (() => string)): void;
  /** Called once the transaction has committed (not on rollback). Synchronous; a throw is ignored. */
  afterCommit(fn: () => void): void;
  /**
   * Sends the statements deferred so far (beforeCommit) ahead of the next query, instead of with the COMMIT: what
   * comes next then reads what they wrote (group-commit.ts runs several requests' work in one transaction this way).
   * Functions deferred are called now for their SQL. Costs no round trip of its own when the next query has no
   * parameters.
   */
  flushDeferred(): void;
  /**
   * Sends `sql` (no parameters) ahead of the transaction's first query, in the message that carries its BEGIN
   * (and the query itself, when it has no parameters): e.g. the inbox record of an event handler. Call it before
   * any query. If that first message fails, its error is kept in `firstMessageError` and the query rejects with it.
   */
  prelude(sql: string): void;
  readonly firstMessageError: unknown;
}

export const isTxClient = (q: Queryable): q is TxClient => typeof (q as Partial<TxClient>).beforeCommit === 'function';

export interface Db extends Queryable {
  readonly pool: pg.Pool;
  /** Runs `fn` in a transaction; commits if it resolves, rolls back if it throws. */
  tx<T>(fn: (client: TxClient) => Promise<T>): Promise<T>;
  /** One typed row or undefined. */
  one<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R | undefined>;
  many<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

type AnyResult = pg.QueryResult<pg.QueryResultRow>;

const FLUSH_MARKER_COLUMN = 'simplebank_flushed';
const FLUSH_MARKER = `SELECT 1 AS ${FLUSH_MARKER_COLUMN}`;

/**
 * Statements with parameters run as named prepared statements: each connection parses and plans one the first
 * times it sees it and then reuses the plan (PostgreSQL keeps a generic plan once it is no worse than the custom
 * ones), instead of parsing and planning on every call. Names are handed out per distinct text, up to a bound, so
 * SQL built with a varying shape (`VALUES ($1, $2), ($3, $4)…`) cannot grow every connection's statement cache
 * without limit: past the bound, new texts run unnamed, as before.
 */
const MAX_PREPARED = 1000;
const preparedNames = new Map<string, string>();

export function queryConfig(text: string, values: unknown[] | undefined): pg.QueryConfig | string {
  if (values === undefined || values.length === 0) return text;
  let name = preparedNames.get(text);
  if (name === undefined) {
    if (preparedNames.size >= MAX_PREPARED) return { text, values };
    name = `sb${preparedNames.size}`;
    preparedNames.set(text, name);
  }
  return { name, text, values };
}

/**
 * One transaction on one pooled connection; see TxClient. The connection is taken from the pool at the first query
 * (or at the commit, for deferred statements only), not when the function starts: work the function does before
 * its first query (calls to other services) holds no connection.
 */
class Transaction implements TxClient {
  begun = false;
  /** Statements run or deferred (its span's statement count). */
  statements = 0;
  firstMessageError: unknown = undefined;
  #connection: Promise<pg.PoolClient> | undefined;
  #prelude = '';
  #deferred: Array<string | (() => string)> = [];
  /** Deferred statements flushed (flushDeferred), sent ahead of the next query or with the COMMIT. */
  #flushed = '';
  #afterCommit: Array<() => void> = [];

  constructor(
    readonly db: Db,
    readonly pool: pg.Pool,
  ) {}

  /** The connection, taken at the first call; every query is queued on it in the order of these calls. */
  #client(): Promise<pg.PoolClient> {
    this.#connection ??= this.pool.connect();
    return this.#connection;
  }

  /** The connection if one was taken (to roll back and release it). */
  get connection(): Promise<pg.PoolClient> | undefined {
    return this.#connection;
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    this.statements++;
    if (this.begun) {
      if (this.#flushed === '') return this.#client().then((c) => c.query<R>(queryConfig(text, values) as pg.QueryConfig));
      const flushed = this.#flushed;
      this.#flushed = '';
      if (values === undefined || values.length === 0) {
        // A marker between them tells where the query's own results start (a deferred string may hold several).
        return this.#client()
          .then((c) => c.query(`${flushed}${FLUSH_MARKER};\n${text}`) as unknown as Promise<AnyResult[]>)
          .then((results) => {
            const rest = results.slice(results.findIndex((r) => r.fields[0]?.name === FLUSH_MARKER_COLUMN) + 1);
            return (rest.length === 1 ? rest[0] : rest) as unknown as pg.QueryResult<R>;
          });
      }
      return this.#client().then((c) => {
        const ahead = c.query(flushed) as unknown as Promise<unknown>;
        const result = c.query<R>(queryConfig(text, values) as pg.QueryConfig);
        return Promise.all([ahead, result]).then(([, r]) => r);
      });
    }
    // BEGIN (and the prelude) go on the connection's queue first, whatever other queries the caller starts meanwhile.
    this.begun = true;
    // Deferred statements flushed before anything ran go with the BEGIN, in a message of their own.
    const flushed = this.#flushed;
    this.#flushed = '';
    const head = `BEGIN;\n${this.#prelude}${flushed}`;
    const skip = this.#prelude === '' ? 1 : 2;
    if ((values === undefined || values.length === 0) && flushed === '') {
      return this.#first(this.#client().then((c) => c.query(`${head}${text}`) as unknown as Promise<AnyResult[]>)).then((results) => {
        const rest = results.slice(skip);
        return (rest.length === 1 ? rest[0] : rest) as unknown as pg.QueryResult<R>;
      });
    }
    return this.#client().then((c) => {
      const begin = this.#first(c.query(head) as unknown as Promise<unknown>);
      const result = c.query<R>(queryConfig(text, values) as pg.QueryConfig);
      // Both awaited, so neither rejection goes unhandled; a failed BEGIN message wins.
      return Promise.all([begin, result]).then(([, r]) => r);
    });
  }

  /** The first message of the transaction: remembers its error (see prelude). */
  #first<T>(message: Promise<T>): Promise<T> {
    return message.catch((err: unknown) => {
      this.firstMessageError = err;
      throw err;
    });
  }

  prelude(sql: string): void {
    if (this.begun) throw new Error('prelude() must come before the first query of the transaction');
    this.statements++;
    this.#prelude += `${sql};\n`;
  }

  beforeCommit(sql: string | (() => string)): void {
    this.statements++;
    this.#deferred.push(sql);
  }

  afterCommit(fn: () => void): void {
    this.#afterCommit.push(fn);
  }

  flushDeferred(): void {
    const sql = this.#takeDeferred();
    if (sql.length > 0) this.#flushed += sql.map((d) => `${d};\n`).join('');
  }

  /** The deferred statements' SQL, in order; the list is emptied. */
  #takeDeferred(): string[] {
    const deferred = this.#deferred.map((d) => (typeof d === 'string' ? d : d())).filter((d) => d !== '');
    this.#deferred = [];
    return deferred;
  }

  async commit(): Promise<void> {
    const deferred = this.#takeDeferred();
    if (this.#flushed !== '') deferred.unshift(this.#flushed.replace(/;\n$/, ''));
    this.#flushed = '';
    let results: AnyResult | AnyResult[];
    if (!this.begun) {
      // Nothing ran: only a prelude and the deferred statements, which one message runs as a transaction.
      if (deferred.length === 0 && this.#prelude === '') return;
      this.begun = true;
      const c = await this.#client();
      results = (await this.#first(c.query(`BEGIN;\n${this.#prelude}${deferred.map((d) => `${d};\n`).join('')}COMMIT`))) as unknown as AnyResult[];
    } else {
      // If a deferred statement fails, the rest of the message (the COMMIT) is skipped and the caller rolls back.
      const c = await this.#client();
      results = (await c.query(deferred.length === 0 ? 'COMMIT' : `${deferred.join(';\n')};\nCOMMIT`)) as unknown as AnyResult | AnyResult[];
    }
    // COMMIT of a transaction an error had aborted (the function caught the error and went on) answers ROLLBACK.
    const last = Array.isArray(results) ? results.at(-1) : results;
    if (last?.command !== 'COMMIT') return;
    for (const fn of this.#afterCommit) {
      try {
        fn();
      } catch {
        // A hook is a nudge (e.g. wake the outbox relay); the commit stands regardless.
      }
    }
  }
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
  const spanAttributes = { 'db.system.name': 'postgresql', 'db.namespace': databaseName(connectionString) };
  /** A query on the pool, with a span when the caller's work is traced. */
  const poolQuery = (text: string, values: unknown[] | undefined): Promise<AnyResult> => {
    const span = startQuerySpan(tracedWork(), text, spanAttributes);
    const query = pool.query(queryConfig(text, values) as pg.QueryConfig);
    return span === undefined ? query : trackQuery(span, query);
  };

  const db: Db = {
    pool,
    query: <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => poolQuery(text, values) as Promise<pg.QueryResult<R>>,
    async one<R extends pg.QueryResultRow>(text: string, values?: unknown[]) {
      const r = await poolQuery(text, values);
      return r.rows[0] as R | undefined;
    },
    async many<R extends pg.QueryResultRow>(text: string, values?: unknown[]) {
      const r = await poolQuery(text, values);
      return r.rows as R[];
    },
    async tx(fn) {
      const tx = new Transaction(db, pool);
      // With the caller's work traced: a span for the transaction, active while its function runs.
      const work = tracedWork();
      const span = startTxSpan(work, spanAttributes);
      let failed: unknown;
      try {
        const result = await runInTx(work, span, fn, tx);
        await tx.commit();
        return result;
      } catch (err) {
        failed = err;
        throw err;
      } finally {
        const connection = tx.connection;
        if (connection) {
          // Taking it may have failed itself (pool exhausted, database down): then there is nothing to release.
          const client = await connection.catch(() => undefined);
          if (client) {
            let broken: Error | undefined;
            if (failed !== undefined && tx.begun) await client.query('ROLLBACK').catch((e: Error) => (broken = e));
            // A connection that could not even roll back is not handed out again.
            client.release(broken);
          }
        }
        if (span !== undefined) endTxSpan(span, tx.statements, failed);
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

/** The database name of a connection string, for span attributes ('' if it names none). */
function databaseName(connectionString: string): string {
  try {
    return decodeURIComponent(new URL(connectionString).pathname.slice(1));
  } catch {
    return '';
  }
}
