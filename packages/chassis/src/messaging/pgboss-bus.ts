import PgBoss from 'pg-boss';
import pg from 'pg';
import type { Logger } from '../log/logger.ts';
import type { Bus, DeadLetter, EventHandler, SubscriptionOptions } from './bus.ts';
import type { EventEnvelope } from './envelope.ts';
import { listen, type PgListener } from './pg-listener.ts';

export interface PgBossBusOptions {
  /** The bus database, shared by every service (each service keeps its own database for its data). */
  url: string;
  service: string;
  log: Logger;
  /** PostgreSQL schema pg-boss keeps its tables in. Default `pgboss`. */
  schema?: string;
  /** Fallback poll when no wake-up arrives. pg-boss's minimum is 0.5 s. Default 2 s. */
  pollingIntervalSeconds?: number;
  /** LISTEN for the NOTIFY wake-ups. Default true; false only to measure what they save. */
  wakeUps?: boolean;
}

/** Every bus process LISTENs here; the payload is an event type, or `queue:<name>` for one queue. */
export const BUS_CHANNEL = 'simplebank_bus';

const MAX_BACKOFF_MS = 5 * 60_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface LocalSubscription {
  options: SubscriptionOptions;
  queue: string;
  workerId: string;
}

type Job = PgBoss.JobWithMetadata<EventEnvelope>;

export const deadLetterQueueName = (subscription: string): string => `${subscription}.dlq`;

/**
 * The embedded bus: pg-boss on a PostgreSQL database.
 *
 * - One queue per subscription name (all instances of a service work the same queue, so each event is handled
 *   once overall), subscribed to each of its event types; publishing inserts one job per subscribed queue.
 * - Wake-up: pg-boss finds jobs by polling. publish() NOTIFYs `simplebank_bus` with the event type in the
 *   inserting transaction (delivered on commit); every bus process LISTENs and calls `notifyWorker` for its
 *   workers of that type, so a hop takes milliseconds instead of a polling interval.
 * - Retries are pg-boss's (retry_count gives Delivery.attempt, and a job whose process died is retried when it
 *   expires), but pg-boss delays are whole seconds, so after a failure we set the job's `start_after` to the
 *   millisecond backoff ourselves and wake the worker when it is due.
 * - After maxAttempts the job moves (pg-boss's deadLetter) to the `<subscription>.dlq` queue, which nobody
 *   works; deadLetters() lists it and replay() moves a job back in one transaction.
 * - Ordering: none promised in general (concurrent handlers, instances, retries). With concurrency 1 and one
 *   instance, events are handled in publish order until one fails; its retry comes after later events.
 * - The job id is the event id, so a republished envelope (relay crash) is dropped while the first job is kept.
 */
export function createPgBossBus(options: PgBossBusOptions): Bus {
  const { service, log } = options;
  const schema = options.schema ?? 'pgboss';
  const pool = new pg.Pool({
    connectionString: options.url,
    max: 10,
    application_name: `${service}:bus`,
    idleTimeoutMillis: 30_000,
    // Without it an unreachable database makes publish(), ping() and close() wait forever.
    connectionTimeoutMillis: 5_000,
  });
  pool.on('error', (err) => log.warn({ err }, 'bus pool client error'));

  // pg-boss runs every query through this, which lets close() see a worker's fetch still in flight.
  let queriesInFlight = 0;
  const bossDb: PgBoss.Db = {
    async executeSql(text, values) {
      queriesInFlight++;
      try {
        return await pool.query(text, values);
      } finally {
        queriesInFlight--;
      }
    },
  };
  const boss = new PgBoss({ db: bossDb, schema, schedule: false, supervise: true, migrate: true });
  boss.on('error', (err) => log.error({ err }, 'pg-boss error'));

  const subscriptions: LocalSubscription[] = [];
  let listener: PgListener | undefined;
  let started = false;
  let closing = false;
  let handlersInFlight = 0;

  async function withTx<T>(fn: (tx: PgBoss.Db) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn({ executeSql: (text, values) => client.query(text, values) });
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  function wake(payload: string) {
    const queue = payload.startsWith('queue:') ? payload.slice('queue:'.length) : undefined;
    for (const s of subscriptions) {
      if (queue ? s.queue === queue : s.options.types.includes(payload)) boss.notifyWorker(s.workerId);
    }
  }

  async function handleJob(sub: LocalSubscription, handler: EventHandler, job: Job) {
    const attempt = job.retryCount + 1;
    handlersInFlight++;
    try {
      try {
        await handler(job.data, { attempt });
      } catch (err) {
        await failJob(sub, job, attempt, err);
        return;
      }
      await boss.complete(sub.queue, job.id).catch((err: unknown) => {
        // Left active, the job expires and is redelivered; the inbox absorbs the duplicate.
        log.warn({ err, subscription: sub.queue, eventId: job.data.id }, 'could not mark event handled');
      });
    } finally {
      handlersInFlight--;
    }
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
      log.error({ err: dbErr, subscription: sub.queue, eventId: job.data.id }, 'could not record failed delivery');
      return;
    }
    if (retry) setTimeout(() => boss.notifyWorker(sub.workerId), backoffMs).unref();
    const fields = { err, subscription: sub.queue, eventId: job.data.id, type: job.data.type, attempt };
    if (retry) log.warn({ ...fields, retryInMs: backoffMs }, 'event handler failed; will retry');
    else log.error(fields, 'event handler failed on its last attempt; dead-lettered');
  }

  const bus: Bus = {
    kind: 'pg-boss',

    async start() {
      if (started) return;
      started = true;
      await boss.start();
      if (options.wakeUps === false) return;
      listener = listen({
        config: { connectionString: options.url },
        channel: BUS_CHANNEL,
        onNotify: wake,
        // Wake-ups sent while the LISTEN connection was down are lost: look at every queue once.
        onConnect: () => subscriptions.forEach((s) => boss.notifyWorker(s.workerId)),
        log,
      });
    },

    // Not boss.publish(): it sends to each subscribed queue with Promise.allSettled and so resolves even when
    // nothing was stored. Here the jobs and the wake-up commit together, or publish() throws.
    async publish(event) {
      await withTx(async (tx) => {
        const { rows } = await tx.executeSql(`SELECT name FROM ${schema}.subscription WHERE event = $1`, [event.type]);
        if (rows.length === 0) return;
        await boss.insert(
          rows.map((r: { name: string }) => ({ id: event.id, name: r.name, data: event })),
          { db: tx },
        );
        await tx.executeSql('SELECT pg_notify($1, $2)', [BUS_CHANNEL, event.type]);
      });
    },

    async subscribe(sub) {
      if (closing) throw new Error('bus is closing');
      const queue = sub.name;
      const dlq = deadLetterQueueName(queue);
      const maxAttempts = sub.maxAttempts ?? 5;
      const concurrency = sub.concurrency ?? 8;
      await boss.createQueue(dlq, { name: dlq });
      const queueOptions: PgBoss.Queue = { name: queue, retryLimit: maxAttempts - 1, retryDelay: 0, retryBackoff: false, deadLetter: dlq };
      await boss.createQueue(queue, queueOptions);
      // createQueue keeps an existing queue as it was; the running code's settings win.
      await boss.updateQueue(queue, queueOptions);
      for (const type of sub.types) await boss.subscribe(type, queue);

      const local: LocalSubscription = { options: sub, queue, workerId: '' };
      local.workerId = await boss.work<EventEnvelope>(
        queue,
        { includeMetadata: true, batchSize: concurrency, pollingIntervalSeconds: options.pollingIntervalSeconds ?? 2 },
        // Each job is completed or failed on its own; pg-boss's own completion of the batch then finds none active.
        async (jobs) => {
          await Promise.all(jobs.map((job) => handleJob(local, sub.handler, job)));
          // pg-boss sleeps a polling interval after every batch, even a full one: a backlog would drain at one
          // batch per interval. A full batch suggests more are waiting, so fetch again at once.
          if (jobs.length >= concurrency) boss.notifyWorker(local.workerId);
        },
      );
      subscriptions.push(local);
    },

    // pg-boss can only fetch (claim) jobs, not list them: read its job table, the DLQ queue's rows never worked.
    async deadLetters(subscription, limit = 100) {
      const { rows } = await pool.query<{ id: string; data: EventEnvelope; output: { message?: string } | null; created_on: Date }>(
        `SELECT id, data, output, created_on FROM ${schema}.job
         WHERE name = $1 AND state = 'created' ORDER BY created_on, id LIMIT $2`,
        [deadLetterQueueName(subscription), limit],
      );
      return rows.map(
        (r): DeadLetter => ({
          id: r.id,
          subscription,
          event: r.data,
          error: r.output?.message ?? JSON.stringify(r.output),
          failedAt: r.created_on.toISOString(),
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

    async ping() {
      await pool.query('SELECT 1');
    },

    async close() {
      if (closing) return;
      closing = true;
      for (const s of subscriptions) await boss.offWork({ id: s.workerId });
      await listener?.close();
      // A worker whose fetch is in flight still hands its jobs to us after offWork: wait for those too.
      const deadline = Date.now() + 30_000;
      while ((handlersInFlight > 0 || queriesInFlight > 0) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      if (handlersInFlight > 0) log.warn({ handlersInFlight }, 'closing the bus with handlers still running');
      if (started) await boss.stop({ graceful: false, close: false });
      await pool.end();
    },
  };
  return bus;
}
