import { createHash } from 'node:crypto';
import PgBoss from 'pg-boss';
import pg from 'pg';
import type { Logger } from '../log/logger.ts';
import { leaseSecondsOf, type Bus, type DeadLetter, type SubscriptionOptions } from './bus.ts';
import type { EventEnvelope } from './envelope.ts';
import { busySignal, type BackPressureOptions } from './loop-lag.ts';
import { listen, type PgListener } from './pg-listener.ts';
import { queryConfig } from '../data/db.ts';
import { completeJobsSql, DELIVERY_SESSION_OPTIONS, expiredJobsSql, fetchJobsSql, jobIndexesSql, lockExpiredJobsSql, notifySql, publishEventsSql, renewLeasesSql } from './pgboss-sql.ts';
import { startQueueWorker, type QueueWorker } from './pgboss-worker.ts';

export interface PgBossBusOptions extends BackPressureOptions {
  /** The bus database, shared by every service (each service keeps its own database for its data). */
  url: string;
  service: string;
  log: Logger;
  /** PostgreSQL schema pg-boss keeps its tables in. Default `pgboss`. */
  schema?: string;
  /** Fallback poll when no wake-up arrives. Default 2 s. */
  pollingIntervalSeconds?: number;
  /** LISTEN for the NOTIFY wake-ups. Default true; false only to measure what they save. */
  wakeUps?: boolean;
}

/** Every consuming bus process LISTENs here; the payload is an event type, or `queue:<name>` for one queue. */
export const BUS_CHANNEL = 'simplebank_bus';

/**
 * The channel publishing wakes a queue's consumers on: one per queue, so a process hears only about the queues it
 * works (a single shared channel would deliver every publish to every consuming process). Channel names are
 * identifiers of at most 63 bytes: a longer queue name is hashed.
 */
export function queueChannel(queue: string): string {
  const channel = `${BUS_CHANNEL}:${queue}`;
  return Buffer.byteLength(channel) <= 63 ? channel : `${BUS_CHANNEL}:${createHash('sha256').update(queue).digest('hex').slice(0, 40)}`;
}

const MAX_BACKOFF_MS = 5 * 60_000;
/** How long close() waits for running handlers before closing anyway (their leases then lapse: redelivered). */
const CLOSE_GRACE_MS = 30_000;
const LAPSED_MESSAGE = 'lease expired: the instance handling the event stopped renewing it (crashed, stalled or lost the database)';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface LocalSubscription {
  options: SubscriptionOptions;
  queue: string;
  leaseSeconds: number;
  worker: QueueWorker;
}

/** A claimed job, as fetchJobsSql returns it. */
interface Job {
  id: string;
  data: EventEnvelope;
  retryCount: number;
  retryLimit: number;
}

export const deadLetterQueueName = (subscription: string): string => `${subscription}.dlq`;

/**
 * The embedded bus: pg-boss on a PostgreSQL database.
 *
 * - One queue per subscription name (all instances of a service work the same queue, so each event is handled
 *   once overall), subscribed to each of its event types; publishing inserts one job per subscribed queue.
 * - Publishing is one SQL statement per call, for one event or a batch (pgboss-sql.ts): the jobs and a NOTIFY per
 *   event type commit together, or publish() throws. The job id is the event id, so a republished envelope
 *   (relay crash) is dropped while the first job is kept.
 * - Wake-up: every bus process LISTENs on `simplebank_bus` and wakes its workers of the NOTIFYed type, so a hop
 *   takes milliseconds instead of a polling interval. Workers are our own loop (pgboss-worker.ts), not
 *   boss.work(): free slots are refilled at once, wake-ups coalesce, completions are written in batches.
 * - Crash recovery: a fetched job is leased for the subscription's leaseSeconds (pg-boss's expire_in); the
 *   instance renews the lease while the handler runs. Every instance sweeps its subscriptions' queues every third
 *   of the lease for jobs whose lease lapsed (their instance died) and fails them through pg-boss, which counts
 *   the lapse as an attempt: retried at once on another instance, dead-lettered after maxAttempts. A job
 *   abandoned by a SIGKILL is redelivered within about lease + lease/3 (20 s by default). pg-boss's own
 *   maintenance still expires jobs too (every couple of minutes), the same way, as a backstop.
 * - Retries are pg-boss's (retry_count gives Delivery.attempt), but pg-boss delays are whole seconds, so after a
 *   failure we set the job's `start_after` to the millisecond backoff ourselves and wake the worker when it is due.
 * - After maxAttempts the job moves (pg-boss's deadLetter) to the `<subscription>.dlq` queue, which nobody
 *   works; deadLetters() lists it and replay() moves a job back in one transaction.
 * - Ordering: none promised in general (concurrent handlers, instances, retries). With concurrency 1 and one
 *   instance, events are handled in publish order until one fails; its retry comes after later events.
 */
export function createPgBossBus(options: PgBossBusOptions): Bus {
  const { service, log } = options;
  const schema = options.schema ?? 'pgboss';
  const pollIntervalMs = (options.pollingIntervalSeconds ?? 2) * 1000;
  const busy = busySignal(options);
  const pool = new pg.Pool({
    connectionString: options.url,
    max: 10,
    application_name: `${service}:bus`,
    idleTimeoutMillis: 30_000,
    // Without it an unreachable database makes publish(), ping() and close() wait forever.
    connectionTimeoutMillis: 5_000,
  });
  pool.on('error', (err) => log.warn({ err }, 'bus pool client error'));
  // Claims, completions and lease renewals: asynchronous commit and no sorting, for the whole session
  // (pgboss-sql.ts, DELIVERY_SESSION_OPTIONS says why).
  const deliveryPool = new pg.Pool({
    connectionString: options.url,
    max: 10,
    application_name: `${service}:bus-delivery`,
    options: DELIVERY_SESSION_OPTIONS,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 5_000,
  });
  deliveryPool.on('error', (err) => log.warn({ err }, 'bus pool client error'));
  // Parameterized statements run prepared (data/db.ts): parsed and planned once per connection.
  const query = <R extends pg.QueryResultRow>(p: pg.Pool | pg.PoolClient, text: string, values?: unknown[]) =>
    p.query<R>(queryConfig(text, values) as pg.QueryConfig);

  const bossDb: PgBoss.Db = { executeSql: (text, values) => query(pool, text, values) };
  const boss = new PgBoss({ db: bossDb, schema, schedule: false, supervise: true, migrate: true });
  boss.on('error', (err) => log.error({ err }, 'pg-boss error'));
  // pg-boss's types omit fail(name, ids[], data, options), which its code supports.
  const failJobs = boss.fail.bind(boss) as unknown as (
    name: string,
    ids: string[],
    data: object,
    options: PgBoss.ConnectionOptions,
  ) => Promise<void>;

  const publishSql = publishEventsSql(schema);
  const renewSql = renewLeasesSql(schema);
  const subscriptions: LocalSubscription[] = [];
  let listener: PgListener | undefined;
  let sweepTimer: NodeJS.Timeout | undefined;
  let sweeping: Promise<void> | undefined;
  let started = false;
  let closing = false;

  async function withTx<T>(fn: (tx: PgBoss.Db) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn({ executeSql: (text, values) => query(client, text, values) });
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  function wake(payload: string, channel: string) {
    if (channel !== BUS_CHANNEL) {
      for (const s of subscriptions) if (queueChannel(s.queue) === channel) s.worker.notify();
      return;
    }
    const queue = payload.startsWith('queue:') ? payload.slice('queue:'.length) : undefined;
    for (const s of subscriptions) {
      if (queue ? s.queue === queue : s.options.types.includes(payload)) s.worker.notify();
    }
  }

  /** The LISTEN connection, opened with the first subscription: a process that only publishes needs none. */
  function listenFor(queue: string): Promise<void> {
    if (options.wakeUps === false) return Promise.resolve();
    listener ??= listen({
      config: { connectionString: options.url },
      channel: BUS_CHANNEL,
      onNotify: wake,
      // Wake-ups sent while the LISTEN connection was down are lost: look at every queue once.
      onConnect: () => subscriptions.forEach((s) => s.worker.notify()),
      log,
    });
    return listener.add(queueChannel(queue));
  }

  /** Runs the handler; true when the job is to be completed, false when its failure was dealt with. */
  async function handleJob(sub: LocalSubscription, job: Job): Promise<boolean> {
    const attempt = job.retryCount + 1;
    try {
      await sub.options.handler(job.data, { attempt });
      return true;
    } catch (err) {
      await failJob(sub, job, attempt, err);
      return false;
    }
  }

  async function fetchJobs(sql: { fetch: string; fetchAndComplete: string }, limit: number, leaseSeconds: number, completing: Job[]): Promise<Job[]> {
    const { rows } =
      completing.length === 0
        ? await query<Job & pg.QueryResultRow>(deliveryPool, sql.fetch, [limit, leaseSeconds])
        : await query<Job & pg.QueryResultRow>(deliveryPool, sql.fetchAndComplete, [limit, leaseSeconds, completing.map((j) => j.id)]);
    return rows;
  }

  async function failJob(sub: LocalSubscription, job: Job, attempt: number, err: unknown) {
    const error = err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : { message: String(err) };
    const retry = job.retryCount < job.retryLimit;
    const backoffMs = Math.min((sub.options.backoffMs ?? 200) * 2 ** (attempt - 1), MAX_BACKOFF_MS);
    try {
      await withTx(async (tx) => {
        await boss.fail(sub.queue, job.id, error, { db: tx });
        if (retry) {
          await tx.executeSql(
            `UPDATE ${schema}.job SET start_after = now() + $3 * interval '1 millisecond'
             WHERE name = $1 AND id = $2 AND state = 'retry'`,
            [sub.queue, job.id, backoffMs],
          );
        }
      });
    } catch (dbErr) {
      // Left active and no longer renewed: the lease lapses and the sweep counts it as this failed attempt.
      log.error({ err: dbErr, subscription: sub.queue, eventId: job.data.id }, 'could not record failed delivery');
      return;
    }
    if (retry) setTimeout(() => sub.worker.notify(), backoffMs).unref();
    const fields = { err, subscription: sub.queue, eventId: job.data.id, type: job.data.type, attempt };
    if (retry) log.warn({ ...fields, retryInMs: backoffMs }, 'event handler failed; will retry');
    else log.error(fields, 'event handler failed on its last attempt; dead-lettered');
  }

  /**
   * Fails the jobs of our queues whose lease lapsed. Usually one indexed query that finds none; each queue with
   * lapsed jobs then gets a transaction that locks them (skipping any another sweeper holds) and fails them
   * through pg-boss's own fail(), so retry counting and dead-lettering are pg-boss's, and wakes its workers.
   */
  async function sweepLapsedLeases() {
    const queues = [...new Set(subscriptions.map((s) => s.queue))];
    if (queues.length === 0) return;
    const { rows } = await query<{ name: string; id: string }>(pool, expiredJobsSql(schema), [queues]);
    const byQueue = new Map<string, string[]>();
    for (const r of rows) byQueue.set(r.name, [...(byQueue.get(r.name) ?? []), r.id]);
    for (const [queue, candidates] of byQueue) {
      const failed = await withTx(async (tx) => {
        const locked = await tx.executeSql(lockExpiredJobsSql(schema), [queue, candidates]);
        const ids = (locked.rows as { id: string }[]).map((r) => r.id);
        if (ids.length === 0) return 0;
        await failJobs(queue, ids, { message: LAPSED_MESSAGE }, { db: tx });
        await tx.executeSql('SELECT pg_notify($1, $2)', [BUS_CHANNEL, `queue:${queue}`]);
        return ids.length;
      });
      if (failed > 0) log.warn({ subscription: queue, events: failed }, 'event deliveries abandoned (lease lapsed); redelivering');
    }
  }

  /** The first sweep comes soon after subscribing: a restarted instance recovers what its predecessor left at once. */
  function scheduleSweep(first = false) {
    if (closing || sweepTimer || subscriptions.length === 0) return;
    const everyMs = Math.max(1000, (Math.min(...subscriptions.map((s) => s.leaseSeconds)) * 1000) / 3);
    sweepTimer = setTimeout(() => {
      sweeping = sweepLapsedLeases()
        .catch((err: unknown) => log.warn({ err }, 'could not sweep lapsed event leases'))
        .finally(() => {
          sweeping = undefined;
          sweepTimer = undefined;
          scheduleSweep();
        });
    }, first ? Math.min(everyMs, 1000) : everyMs);
    sweepTimer.unref();
  }

  /**
   * Created once per bus database (pgboss-sql.ts says why), under a lock: concurrent CREATE INDEX IF NOT EXISTS
   * may still collide. Checked first so that a start normally takes no lock on the job table.
   */
  async function ensureJobIndexes() {
    const indexes = jobIndexesSql(schema);
    const { rows } = await pool.query<{ indexname: string }>(
      'SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND indexname = ANY($2::text[])',
      [schema, indexes.map((i) => i.name)],
    );
    const missing = indexes.filter((i) => !rows.some((r) => r.indexname === i.name));
    if (missing.length === 0) return;
    await withTx(async (tx) => {
      await tx.executeSql(`SELECT pg_advisory_xact_lock(hashtext('simplebank_bus_job_indexes'))`, []);
      for (const index of missing) await tx.executeSql(index.sql, []);
    });
  }

  const bus: Bus = {
    kind: 'pg-boss',

    async start() {
      if (started) return;
      started = true;
      await boss.start();
      await ensureJobIndexes();
    },

    async publish(event) {
      await bus.publishBatch([event]);
    },

    // Not boss.publish(): it sends to each subscribed queue with Promise.allSettled and so resolves even when
    // nothing was stored. Here one statement stores every job, or throws; then the consumers are woken.
    async publishBatch(events) {
      if (events.length === 0) return;
      const { rows } = await query<{ queue: string }>(pool, publishSql, [JSON.stringify(events)]);
      if (rows.length === 0) return;
      // Published (durably) already: a failed wake-up is only a delay, the consumers' polling finds the jobs.
      await pool.query(notifySql(rows.map((r) => queueChannel(r.queue)))).catch((err: unknown) => log.warn({ err }, 'could not wake the consumers; they will poll'));
    },

    async subscribe(sub) {
      if (closing) throw new Error('bus is closing');
      const queue = sub.name;
      const dlq = deadLetterQueueName(queue);
      const maxAttempts = sub.maxAttempts ?? 5;
      const concurrency = sub.concurrency ?? 8;
      const leaseSeconds = leaseSecondsOf(sub);
      const queueOptions: PgBoss.Queue = {
        name: queue,
        retryLimit: maxAttempts - 1,
        retryDelay: 0,
        retryBackoff: false,
        deadLetter: dlq,
        expireInSeconds: leaseSeconds,
      };
      // pg-boss 10 creates a partition per queue; services creating queues at the same moment deadlock on the
      // parent table. A session advisory lock on the bus database lets one process at a time set up queues.
      const lock = await pool.connect();
      try {
        await lock.query(`SELECT pg_advisory_lock(hashtext('simplebank_bus_queues'))`);
        await boss.createQueue(dlq, { name: dlq });
        await boss.createQueue(queue, queueOptions);
        // createQueue keeps an existing queue as it was; the running code's settings win.
        await boss.updateQueue(queue, queueOptions);
        for (const type of sub.types) await boss.subscribe(type, queue);
      } finally {
        await lock.query(`SELECT pg_advisory_unlock(hashtext('simplebank_bus_queues'))`).catch(() => {});
        lock.release();
      }

      const fetchSql = { fetch: fetchJobsSql(schema, queue), fetchAndComplete: fetchJobsSql(schema, queue, { completing: true }) };
      const completeSql = completeJobsSql(schema, queue);
      const local: LocalSubscription = {
        options: sub,
        queue,
        leaseSeconds,
        worker: startQueueWorker<Job>({
          queue,
          concurrency,
          pollIntervalMs,
          ...(busy ? { busy } : {}),
          log,
          fetch: (limit, completing) => fetchJobs(fetchSql, limit, leaseSeconds, completing),
          handle: (job) => handleJob(local, job),
          complete: async (jobs) => {
            await query(deliveryPool, completeSql, [jobs.map((j) => j.id)]);
          },
          renew: async (jobs) => {
            await query(deliveryPool, renewSql, [queue, jobs.map((j) => j.id), jobs.map((j) => j.retryCount), leaseSeconds]);
          },
          renewEveryMs: (leaseSeconds * 1000) / 3,
        }),
      };
      subscriptions.push(local);
      await listenFor(queue);
      scheduleSweep(true);
    },

    // pg-boss can only fetch (claim) jobs, not list them: read its job table, the DLQ queue's rows never worked.
    async deadLetters(subscription, limit = 100) {
      // pg-boss copies the failed job's retry_limit onto its dead letter, and it failed after retry_limit retries.
      const { rows } = await pool.query<{ id: string; data: EventEnvelope; output: { message?: string } | null; created_on: Date; retry_limit: number }>(
        `SELECT id, data, output, created_on, retry_limit FROM ${schema}.job
         WHERE name = $1 AND state = 'created' ORDER BY created_on, id LIMIT $2`,
        [deadLetterQueueName(subscription), limit],
      );
      return rows.map(
        (r): DeadLetter => ({
          id: r.id,
          subscription,
          event: r.data,
          error: r.output?.message ?? (r.output ? JSON.stringify(r.output) : ''),
          failedAt: r.created_on.toISOString(),
          attempts: r.retry_limit + 1,
        }),
      );
    },

    async replay(subscription, deadLetterId) {
      if (!UUID.test(deadLetterId)) return false;
      return withTx(async (tx) => {
        const { rows } = await tx.executeSql(
          `DELETE FROM ${schema}.job WHERE name = $1 AND id = $2 AND state = 'created' RETURNING data`,
          [deadLetterQueueName(subscription), deadLetterId],
        );
        const row = rows[0] as { data: EventEnvelope } | undefined;
        if (!row) return false;
        // A fresh job id: the original job (failed) may still hold the event id. Attempts start again at 1.
        const id = await boss.send(subscription, row.data, { db: tx });
        if (!id) throw new Error(`cannot replay into queue ${subscription}: it does not exist`);
        await tx.executeSql('SELECT pg_notify($1, $2)', [BUS_CHANNEL, `queue:${subscription}`]);
        return true;
      });
    },

    // Jobs not yet completed (created, retry, active) per queue, and the DLQ queues' jobs, in one query; pg-boss 10
    // keeps a partition per queue, so only our queues' partitions are read.
    async subscriptionStats() {
      const queues = [...new Set(subscriptions.map((s) => s.queue))];
      if (queues.length === 0) return [];
      const { rows } = await pool.query<{ name: string; n: number }>(
        `SELECT name, count(*)::int AS n FROM ${schema}.job WHERE name = ANY($1::text[]) AND state < 'completed' GROUP BY name`,
        [[...queues, ...queues.map(deadLetterQueueName)]],
      );
      const count = new Map(rows.map((r) => [r.name, r.n]));
      return queues.map((q) => ({ subscription: q, pending: count.get(q) ?? 0, deadLetters: count.get(deadLetterQueueName(q)) ?? 0 }));
    },

    async ping() {
      await pool.query('SELECT 1');
    },

    async close() {
      if (closing) return;
      closing = true;
      clearTimeout(sweepTimer);
      const stillRunning = await Promise.all(subscriptions.map((s) => s.worker.stop(CLOSE_GRACE_MS)));
      const handlersInFlight = stillRunning.reduce((a, b) => a + b, 0);
      // Their jobs are no longer renewed: the leases lapse and another instance handles them.
      if (handlersInFlight > 0) log.warn({ handlersInFlight }, 'closing the bus with handlers still running');
      await listener?.close();
      await sweeping;
      if (started) await boss.stop({ graceful: false, close: false });
      await Promise.all([pool.end(), deliveryPool.end()]);
    },
  };
  return bus;
}
