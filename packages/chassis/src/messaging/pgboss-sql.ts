import pg from 'pg';

// SQL the pg-boss adapter runs against pg-boss 10's own tables, for what its API cannot do fast enough or at all:
// publish many events in one statement, fetch without sorting the whole queue, complete without waiting for the
// disk, renew and sweep leases, and the indexes those need. Column semantics follow pg-boss's plans.js
// (insertJobs, fetchNextJob, completeJobs, failJobsByTimeout); revisit this file when upgrading pg-boss.

/**
 * One statement (so one round trip, and atomic without BEGIN/COMMIT) that inserts a job per event and subscribed
 * queue and returns the queues it put jobs on, to be woken by notifySql. $1: jsonb array of envelopes.
 *
 * - The NOTIFY is not in this statement: a transaction that NOTIFYs holds a cluster-wide lock from its commit until
 *   the commit is on disk, so every notifying commit of every database would wait for its own fsync in turn.
 * - The job id is the event id, and ON CONFLICT DO NOTHING drops a republished event the queue already holds.
 * - created_on, which pg-boss fetches in (after priority), is the transaction start plus the event's position in
 *   microseconds. The default (now() alone) is the same for every row of a transaction, leaving the order to the
 *   random job id. The next batch's transaction starts after this one commits, which takes far longer than a
 *   microsecond per row, so one publisher's batches never interleave (concurrent publishers are
 *   ordered by transaction start, as before).
 * - The per-job settings are taken from the queue exactly as pg-boss's insert() does when no job option is given.
 */
export function publishEventsSql(schema: string): string {
  return `
    WITH events AS (
      SELECT (e.value->>'id')::uuid AS id, e.value->>'type' AS type, e.value AS data, e.ord
      FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(value, ord)
    ),
    targets AS (
      SELECT e.id, e.type, e.data, e.ord, q.name, q.policy, q.retry_limit, q.retry_delay, q.retry_backoff,
        q.expire_seconds, q.retention_minutes, q.dead_letter
      FROM events e
      JOIN ${schema}.subscription s ON s.event = e.type
      JOIN ${schema}.queue q ON q.name = s.name
    ),
    inserted AS (
      INSERT INTO ${schema}.job (
        id, name, data, created_on, start_after, expire_in, keep_until,
        retry_limit, retry_delay, retry_backoff, dead_letter, policy
      )
      SELECT
        t.id, t.name, t.data, now() + t.ord * interval '1 microsecond', now(),
        COALESCE(t.expire_seconds * interval '1 second', interval '15 minutes'),
        now() + COALESCE(t.retention_minutes * interval '1 minute', interval '14 days'),
        COALESCE(t.retry_limit, 2),
        CASE WHEN COALESCE(t.retry_backoff, false) THEN GREATEST(COALESCE(t.retry_delay, 0), 1) ELSE COALESCE(t.retry_delay, 0) END,
        COALESCE(t.retry_backoff, false),
        t.dead_letter,
        t.policy
      FROM targets t
      ON CONFLICT DO NOTHING
    )
    SELECT DISTINCT name AS queue FROM targets
  `;
}

/**
 * Claims, completions and lease renewals are committed without waiting for the WAL to reach the disk (a third of
 * their latency on an idle machine, more under load). A database crash may then forget the last moments of them,
 * which at-least-once delivery already covers: a forgotten claim makes the job available again, a forgotten
 * completion makes it lapse and be redelivered, and the consumer's inbox drops the duplicate. Publishing stays
 * synchronous: the relay marks events published only once they are durably on the bus.
 *
 * They run on connections of their own whose session has DELIVERY_SESSION_OPTIONS, so each is one parameterized
 * statement: a prepared statement's plan is reused, where a SET LOCAL would force a multi-statement simple query
 * that PostgreSQL parses and plans afresh every time (on pg-boss's partitioned job table, planning cost more than
 * executing).
 */
export const DELIVERY_SESSION_OPTIONS = '-c synchronous_commit=off -c enable_sort=off';

/** Kept for the wake-ups, which are one simple-protocol message. */
const ASYNC_COMMIT = 'SET LOCAL synchronous_commit = off;';

/**
 * The wake-ups for a publish that has committed: a NOTIFY on each channel (one per queue that got jobs), committed
 * without waiting for the disk (ASYNC_COMMIT), so the cluster-wide NOTIFY lock is held for microseconds. A lost
 * wake-up only costs a polling interval. One simple-protocol message; the channels are escaped literals.
 */
export function notifySql(channels: string[]): string {
  return `${ASYNC_COMMIT}\n    SELECT ${channels.map((c) => `pg_notify(${pg.escapeLiteral(c)}, '')`).join(', ')}`;
}

/**
 * Marks handled jobs completed, as pg-boss's complete() does. On a delivery connection (DELIVERY_SESSION_OPTIONS).
 * $1: job ids.
 */
export function completeJobsSql(schema: string, queue: string): string {
  return `
    UPDATE ${schema}.job SET completed_on = now(), state = 'completed'
    WHERE name = ${pg.escapeLiteral(queue)} AND id = ANY($1::uuid[]) AND state = 'active'
  `;
}

/**
 * Claims the next jobs of a queue, as pg-boss's fetch does for a standard queue (same order, same retry_count
 * rule), but reading only the rows it claims: pg-boss's fetch sorts every waiting job of the queue on each call,
 * so draining a backlog of n jobs costs O(n²) (at 5000 waiting, ~5 ms a fetch). The index
 * simplebank_job_fetch_order holds the waiting jobs in fetch order, but on a young or fast-changing partition the
 * planner's row estimate is too low to prefer it over sorting; `enable_sort = off` (a delivery connection's
 * session setting) leaves it no other choice.
 *
 * It also starts the lease: expire_in is set to the subscription's, whatever the queue's was at insert.
 * The queue name is inlined, so the plan is pruned to the queue's partition once, when the statement is prepared.
 * $1: how many, $2: lease seconds[, $3: ids of handled jobs to complete].
 */
export function fetchJobsSql(schema: string, queue: string, options: { completing?: boolean } = {}): string {
  const q = pg.escapeLiteral(queue);
  // The claimed ids come as an array (an InitPlan), so the UPDATE finds each by its primary key whatever the
  // planner thinks of the queue's size: a join with the CTE could be planned (and, prepared, kept) as a walk over
  // the whole partition.
  // `completing`: $3 holds handled jobs to mark completed in the same statement (as completeJobsSql does); they are
  // active, so never among the jobs claimed.
  return `${options.completing ? `
    WITH completed AS (
      UPDATE ${schema}.job SET completed_on = now(), state = 'completed'
      WHERE name = ${q} AND id = ANY($3::uuid[]) AND state = 'active'
    )` : ''}
    UPDATE ${schema}.job j SET
      state = 'active',
      started_on = now(),
      expire_in = $2 * interval '1 second',
      retry_count = CASE WHEN j.started_on IS NOT NULL THEN j.retry_count + 1 ELSE j.retry_count END
    WHERE j.name = ${q} AND j.id = ANY(ARRAY(
      SELECT id FROM ${schema}.job
      WHERE name = ${q} AND state < 'active' AND start_after < now()
      ORDER BY priority DESC, created_on, id
      LIMIT $1
      FOR UPDATE SKIP LOCKED
    ))
    RETURNING j.id, j.data, j.retry_count AS "retryCount", j.retry_limit AS "retryLimit"
  `;
}

/**
 * Renews the leases of jobs still being handled here. started_on is what expiry counts from (pg-boss's own
 * maintenance uses the same started_on + expire_in); expire_in is set to the subscription's lease so a job
 * inserted under an older setting follows the current one. retry_count guards against renewing a job that has
 * already expired and been claimed again (by another instance): that claim is the other instance's to keep.
 * $1: queue, $2: job ids, $3: their retry_count, $4: lease seconds.
 */
export function renewLeasesSql(schema: string): string {
  return `
    UPDATE ${schema}.job j SET started_on = now(), expire_in = $4 * interval '1 second'
    WHERE j.name = $1 AND j.id = ANY($2::uuid[]) AND j.state = 'active'
      AND (j.id, j.retry_count) IN (SELECT * FROM unnest($2::uuid[], $3::int[]))
  `;
}

/** Active jobs of the given queues whose lease has lapsed: their instance died, or lost its database. $1: queues. */
export function expiredJobsSql(schema: string): string {
  return `
    SELECT name, id FROM ${schema}.job
    WHERE name = ANY($1::text[]) AND state = 'active' AND started_on + expire_in < now()
    LIMIT 1000
  `;
}

/**
 * Locks the lapsed jobs of one queue among the candidates, skipping any that another sweeper (or pg-boss's own
 * maintenance) is failing right now, so a lapse is counted once. $1: queue, $2: candidate ids.
 */
export function lockExpiredJobsSql(schema: string): string {
  return `
    SELECT id FROM ${schema}.job
    WHERE name = $1 AND id = ANY($2::uuid[]) AND state = 'active' AND started_on + expire_in < now()
    FOR UPDATE SKIP LOCKED
  `;
}

/**
 * Indexes this adapter adds to pg-boss's job table. Created on the partitioned parent, PostgreSQL builds them on
 * every queue partition, and on each one pg-boss attaches later.
 * - fetch order: waiting jobs in the order fetchJobsSql takes them, so a fetch reads only the rows it claims.
 * - active: pg-boss indexes only waiting jobs, so finding lapsed leases would scan every job kept in the table
 *   (completed ones stay for hours); this partial index holds just the few active ones.
 */
export function jobIndexesSql(schema: string): { name: string; sql: string }[] {
  return [
    {
      name: 'simplebank_job_fetch_order',
      sql: `CREATE INDEX IF NOT EXISTS simplebank_job_fetch_order ON ${schema}.job (name, priority DESC, created_on, id) WHERE state < 'active'`,
    },
    {
      name: 'simplebank_job_active',
      sql: `CREATE INDEX IF NOT EXISTS simplebank_job_active ON ${schema}.job (name, started_on) WHERE state = 'active'`,
    },
  ];
}
