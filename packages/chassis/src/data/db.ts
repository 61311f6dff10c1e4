import pg from 'pg';
import { executeSql, preparesFor } from './prepared.ts';
import { endTxSpan, runInTx, startQuerySpan, startTxSpan, trackQuery, tracedWork } from '../trace/db-spans.ts';

/** Anything that can run a query: the pool or a transaction's client. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/**
 * The client `db.tx` hands to its function: queries run in the transaction, plus two hooks around its commit.
 *
 * Round trips are what a transaction costs (on both sides of the socket), so the client saves the ones it can:
 * BEGIN travels with the first query (simple protocol: `BEGIN; <query>` is one message), and statements deferred
 * with `beforeCommit` travel with the COMMIT. A statement with parameters that shares a message this way runs as
 * `EXECUTE` of a statement prepared on the connection (prepared.ts), so PostgreSQL plans it once per connection
 * instead of parsing and planning it on every call.
 */
export interface TxClient extends Queryable {
  readonly db: Db;
  /**
   * Runs `sql` (no parameters: inline values with `sql`/`sqlLiteral` from literal.ts) at the end of the transaction,
   * in the COMMIT's round trip, after everything the function did and in the order deferred. If it fails, the
   * transaction rolls back and `db.tx` throws, as if a query inside had failed. A function is called at the commit
   * for its SQL (empty: nothing to run), so writes made until then can be gathered into one statement.
   */
  beforeCommit(sql: string | (() => string | Statement)): void;
  /**
   * The same with parameters (or a function that returns a Statement): it runs as `EXECUTE` of a prepared statement
   * (prepared.ts), so its plan is cached. Its text must be of a fixed shape (rows of varying number go as one array
   * or JSON parameter): each distinct text is prepared on every connection that runs it.
   */
  beforeCommit(text: string, values: unknown[]): void;
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
   * Sends `sql` (one statement) ahead of the transaction's first query, in the message that carries its BEGIN and
   * the query: e.g. the inbox record of an event handler. Call it before any query; several run in the order given.
   * If that first message fails, its error is kept in `firstMessageError` and the query rejects with it.
   */
  prelude(sql: string): void;
  /** The same with parameters (as `EXECUTE` of a prepared statement, prepared.ts). */
  prelude(text: string, values: unknown[]): void;
  /**
   * Runs several statements in one message (one round trip; with the BEGIN when they are the transaction's first),
   * each as `EXECUTE` of a prepared statement, one after another: each reads what the ones before it did, with a
   * snapshot taken after they ran (e.g. a lock, then a read). Resolves with each statement's result.
   */
  queryAll(statements: readonly Statement[]): Promise<pg.QueryResult[]>;
  readonly firstMessageError: unknown;
}

/** A statement with its parameters, as a deferred write can render itself at the commit (TxClient.beforeCommit). */
export interface Statement {
  text: string;
  values: unknown[];
}

export const isTxClient = (q: Queryable): q is TxClient => typeof (q as Partial<TxClient>).beforeCommit === 'function';

/**
 * A write nothing reads back before the commit, wherever it runs: inside a `db.tx` transaction it goes with the
 * COMMIT (TxClient.beforeCommit), in the order made, and if it fails the transaction rolls back as it would have a
 * moment earlier; elsewhere it runs at once.
 */
export async function writeAtCommit(q: Queryable, text: string, values?: unknown[]): Promise<void> {
  if (!isTxClient(q)) await q.query(text, values);
  else if (values === undefined) q.beforeCommit(text);
  else q.beforeCommit(text, values);
}

/**
 * Statements that each read what the ones before did (e.g. a lock, then a read), wherever they run: inside a
 * transaction in one message (TxClient.queryAll), elsewhere one after another.
 */
export async function queryAll(q: Queryable, statements: readonly Statement[]): Promise<pg.QueryResult[]> {
  if (isTxClient(q)) return q.queryAll(statements);
  const results: pg.QueryResult[] = [];
  for (const st of statements) results.push(await q.query(st.text, st.values));
  return results;
}

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
  /** Statements in the prelude (each one statement: their results come before the first query's). */
  #preludeCount = 0;
  #deferred: Array<string | (() => string | Statement)> = [];
  /** Prepared statements (prepared.ts) the SQL built since the last message runs: prepared ahead of the next one. */
  #needs = new Set<string>();
  /**
   * A message that carried PREPAREs failed: which of them ran is unknown, so the connection is closed rather than
   * handed out again (a second PREPARE of the same name would fail).
   */
  discard = false;
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
    if (values !== undefined && values.length > 0 && (!this.begun || this.#flushed !== '')) {
      // It shares a message (with the BEGIN, or with flushed statements): as EXECUTE of a prepared statement.
      const inline = this.#inline(text, values);
      if (inline !== undefined) {
        text = inline;
        values = undefined;
      }
    }
    if (this.begun) {
      if (this.#flushed === '') {
        // Without parameters it may execute prepared statements (queryAll): #send prepares what the connection lacks.
        if (values === undefined || values.length === 0) return this.#client().then((c) => this.#send(c, text) as Promise<pg.QueryResult<R>>);
        return this.#client().then((c) => c.query<R>(queryConfig(text, values) as pg.QueryConfig));
      }
      const flushed = this.#flushed;
      this.#flushed = '';
      if (values === undefined || values.length === 0) {
        // A marker between them tells where the query's own results start (a deferred string may hold several).
        return this.#client()
          .then((c) => this.#send(c, `${flushed}${FLUSH_MARKER};\n${text}`) as Promise<AnyResult[]>)
          .then((results) => {
            const rest = results.slice(results.findIndex((r) => r.fields[0]?.name === FLUSH_MARKER_COLUMN) + 1);
            return (rest.length === 1 ? rest[0] : rest) as unknown as pg.QueryResult<R>;
          });
      }
      return this.#client().then((c) => {
        const ahead = this.#send(c, flushed);
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
    const skip = 1 + this.#preludeCount;
    if ((values === undefined || values.length === 0) && flushed === '') {
      return this.#first(this.#client().then((c) => this.#send(c, `${head}${text}`) as Promise<AnyResult[]>)).then((results) => {
        const rest = results.slice(skip);
        return (rest.length === 1 ? rest[0] : rest) as unknown as pg.QueryResult<R>;
      });
    }
    return this.#client().then((c) => {
      const begin = this.#first(this.#send(c, head));
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

  async queryAll(statements: readonly Statement[]): Promise<pg.QueryResult[]> {
    if (statements.length === 0) return [];
    const executes = statements.map((st) => executeSql(st.text, st.values));
    if (executes.some((e) => e === undefined)) {
      // One that cannot be an EXECUTE: all of them one after another, each in its own round trip.
      const results: pg.QueryResult[] = [];
      for (const each of statements) results.push(await this.query(each.text, each.values));
      return results;
    }
    for (const e of executes) this.#needs.add(e!.name);
    this.statements += statements.length - 1;
    const result = (await this.query(executes.map((e) => e!.sql).join(';\n'))) as unknown as pg.QueryResult | pg.QueryResult[];
    return Array.isArray(result) ? result : [result];
  }

  prelude(sql: string, values?: unknown[]): void {
    if (this.begun) throw new Error('prelude() must come before the first query of the transaction');
    this.statements++;
    this.#prelude += `${values === undefined ? sql : this.#mustInline(sql, values)};\n`;
    this.#preludeCount++;
  }

  beforeCommit(sql: string | (() => string | Statement), values?: unknown[]): void {
    this.statements++;
    this.#deferred.push(values === undefined ? sql : this.#mustInline(sql as string, values));
  }

  /** `text` with `values` as EXECUTE of its prepared statement (prepared.ts), noted to be prepared; or undefined. */
  #inline(text: string, values: unknown[]): string | undefined {
    const execute = executeSql(text, values);
    if (execute === undefined) return undefined;
    this.#needs.add(execute.name);
    return execute.sql;
  }

  #mustInline(text: string, values: unknown[]): string {
    const inline = this.#inline(text, values);
    if (inline === undefined) {
      throw new Error(`cannot defer this statement with its parameters (a Buffer value, or too many distinct statement texts): ${text.slice(0, 80)}`);
    }
    return inline;
  }

  /**
   * Sends `sql` in one message, after the PREPAREs of the statements it executes that the connection lacks; answers
   * as if only `sql` had been sent.
   */
  async #send(c: pg.PoolClient, sql: string): Promise<AnyResult | AnyResult[]> {
    const prepares = this.#needs.size === 0 ? { sql: '', count: 0 } : preparesFor(c, this.#needs);
    this.#needs.clear();
    if (prepares.count === 0) return c.query(sql) as unknown as Promise<AnyResult | AnyResult[]>;
    let results: AnyResult[];
    try {
      results = (await c.query(`${prepares.sql}${sql}`)) as unknown as AnyResult[];
    } catch (err) {
      this.discard = true;
      throw err;
    }
    const own = results.slice(prepares.count);
    return own.length === 1 ? own[0]! : own;
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
    const deferred = this.#deferred
      .map((d) => {
        if (typeof d === 'string') return d;
        const made = d();
        return typeof made === 'string' ? made : this.#mustInline(made.text, made.values);
      })
      .filter((d) => d !== '');
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
      results = (await this.#first(this.#send(c, `BEGIN;\n${this.#prelude}${deferred.map((d) => `${d};\n`).join('')}COMMIT`))) as AnyResult[];
    } else {
      // If a deferred statement fails, the rest of the message (the COMMIT) is skipped and the caller rolls back.
      const c = await this.#client();
      results = await this.#send(c, deferred.length === 0 ? 'COMMIT' : `${deferred.join(';\n')};\nCOMMIT`);
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
            // A connection that could not even roll back, or whose prepared statements are in doubt, is not handed out again.
            client.release(broken ?? (tx.discard ? new Error('prepared statements in doubt after a failed message') : undefined));
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
