import type { Db } from '../data/db.ts';
import { watchWakeups } from '../data/wake.ts';
import type { Logger } from '../log/logger.ts';
import type { Tracer } from '@opentelemetry/api';
import { startPublishSpans, trackPublish } from '../trace/messaging-spans.ts';
import type { Bus } from './bus.ts';
import type { EventEnvelope } from './envelope.ts';
import { OUTBOX_CHANNEL } from './outbox.ts';
import { pruneInbox, type InboxRetention } from './retention.ts';

export interface OutboxRelayOptions extends InboxRetention {
  db: Db;
  bus: Bus;
  log: Logger;
  /** The service's tracer: a `publish <type>` span per event whose envelope's trace is sampled. */
  tracer?: Tracer | undefined;
  /** Rows per transaction, published with one publishBatch. Default 100. */
  batchSize?: number;
  /** Fallback poll when no NOTIFY arrives (lost connection, missed wake-up). Default 1000 ms. */
  pollIntervalMs?: number;
  /**
   * How often the relay deletes inbox rows past their retention (inboxRetentionMs; see retention.ts). Default
   * 60 000 ms; 0 turns pruning off.
   */
  pruneIntervalMs?: number;
  /** Told how many events each batch published, once they are deleted from the outbox (metrics). */
  onPublished?: (count: number) => void;
}

export interface OutboxRelay {
  /** Stops relaying after the in-flight batch has been published and deleted. */
  stop(): Promise<void>;
  /** Events recorded but not yet published. */
  backlog(): Promise<number>;
}

// One relay per service database at a time: SKIP LOCKED alone would let a second instance take the rows after
// the first one's batch and publish them concurrently, i.e. out of order. The others wait for the next round.
const RELAY_LOCK = `pg_try_advisory_xact_lock(hashtext('simplebank_outbox_relay'))`;

/**
 * One round trip: take the relay lock, then lock the next rows. The row SELECT takes the (re-entrant) lock again
 * in an InitPlan, evaluated once before any row is read, so it reads rows only while holding the lock: when the
 * first try failed it returns none (or, if the holder let go in between, it now holds the lock and may read them).
 * Deleting published rows is delivery bookkeeping, committed without waiting for the disk: if a crash forgets the
 * delete, the rows are published again and the bus (same job id) and the consumers' inbox drop the duplicates.
 *
 * A published row leaves a dead entry in the primary key until vacuum. A plain index scan marks the entries it
 * finds dead as such, so the next scans step over them; a bitmap scan (which the planner likes on a young table)
 * never does, and would visit every published row's heap page on every round, hence no bitmap scans here.
 */
const fetchBatchSql = (batchSize: number) => `SET LOCAL synchronous_commit = off;
  SET LOCAL enable_bitmapscan = off;
  SELECT ${RELAY_LOCK} AS locked;
  SELECT seq, envelope FROM outbox
  WHERE (SELECT ${RELAY_LOCK})
  ORDER BY seq LIMIT ${batchSize} FOR UPDATE SKIP LOCKED`;

/**
 * The outbox holds only what is still to be published (migration 003): a published row is deleted, not marked. An
 * update that marked it could never be heap-only and wrote the whole row again; a delete only flags it.
 */
const DELETE_PUBLISHED_SQL = 'DELETE FROM outbox WHERE seq = ANY($1::bigint[])';

/** When another instance holds the relay lock, look again this soon: its batch may not include our rows. */
const LOCK_BUSY_RETRY_MS = 50;

const MAX_BACKOFF_MS = 30_000;

/**
 * Publishes outbox rows in `seq` order and deletes them. A row is deleted only after the bus has acknowledged it,
 * in the transaction that locked it, so a crash between the two republishes the row (consumers dedupe on the event
 * id) and never skips one. Each batch is one publishBatch and one DELETE, so a round trip is paid per batch, not
 * per event.
 *
 * Order: a batch is published in seq order; if publishBatch fails, nothing of it is deleted and the whole batch
 * is published again after a backoff, so nothing overtakes a failed event. (On NATS, events after the failed one
 * may already have been stored; see nats-bus.ts.)
 * seq is assigned at insert, not at commit, so two concurrent transactions may commit in the opposite order;
 * events of one aggregate are ordered anyway because their transactions serialise on the aggregate's row.
 */
export function startOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { db, bus, log } = options;
  const batchSize = options.batchSize ?? 100;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;

  let stopping = false;
  let woken = false;
  let wake: (() => void) | undefined;
  let failures = 0;

  const nudge = () => {
    woken = true;
    wake?.();
  };

  // Commits of this process that wrote outbox rows wake the relay in memory (outbox.ts says why not NOTIFY);
  // LISTEN still hears writers elsewhere (an api instance's commits, a plain client's appendToOutbox).
  const wakeups = watchWakeups(db, OUTBOX_CHANNEL, nudge, log);

  /** Publishes and deletes one batch; returns how many rows it published. Throws, deleting none, if the bus fails. */
  function relayBatch(): Promise<{ published: number; more: boolean; busy: boolean }> {
    return db.tx(async (tx) => {
      const [, , lock, batch] = (await tx.query(fetchBatchSql(batchSize))) as unknown as [unknown, unknown, { rows: { locked: boolean }[] }, { rows: { seq: string; envelope: EventEnvelope }[] }];
      const rows = batch.rows;
      if (rows.length === 0) return { published: 0, more: false, busy: !lock.rows[0]?.locked };
      const envelopes = rows.map((r) => r.envelope);
      await trackPublish(startPublishSpans(options.tracer, envelopes), bus.publishBatch(envelopes));
      // Deleted in the COMMIT's round trip.
      tx.beforeCommit(DELETE_PUBLISHED_SQL, [rows.map((r) => r.seq)]);
      return { published: rows.length, more: rows.length === batchSize, busy: false };
    });
  }

  // Pruning runs beside the relay loop, not in it: a slow DELETE must not hold up publishing.
  const pruneIntervalMs = options.pruneIntervalMs ?? 60_000;
  let pruneTimer: NodeJS.Timeout | undefined;
  let pruning: Promise<void> | undefined;
  function schedulePrune() {
    if (stopping || pruneIntervalMs <= 0) return;
    pruneTimer = setTimeout(() => {
      pruning = pruneInbox(db, options, () => stopping)
        .then((deleted) => {
          if (deleted > 0) log.debug({ deleted }, 'pruned the inbox');
        })
        .catch((err: unknown) => log.warn({ err }, 'could not prune the inbox; will try again'))
        .finally(() => {
          pruning = undefined;
          schedulePrune();
        });
    }, pruneIntervalMs);
    pruneTimer.unref();
  }
  schedulePrune();

  function sleep(ms: number, interruptible: boolean): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      // During a failure backoff a NOTIFY must not cut the wait short, only stop() may.
      wake = interruptible ? done : () => { if (stopping) done(); };
    });
  }

  const loop = (async () => {
    while (!stopping) {
      woken = false;
      let more = false;
      let busy = false;
      try {
        const r = await relayBatch();
        more = r.more;
        busy = r.busy;
        if (failures > 0) log.info({ afterFailures: failures }, 'outbox relay recovered');
        failures = 0;
        if (r.published > 0) {
          options.onPublished?.(r.published);
          log.debug({ published: r.published }, 'outbox relayed');
        }
      } catch (err) {
        failures++;
        const backoff = Math.min(200 * 2 ** (failures - 1), MAX_BACKOFF_MS);
        log.warn({ err, failures, backoffMs: backoff }, 'outbox relay failed; events stay in the outbox for the next round');
        await sleep(backoff, false);
        continue;
      }
      if (more || stopping) continue;
      if (busy) {
        // Another instance is relaying; whatever it leaves, we take in a moment.
        await sleep(Math.min(LOCK_BUSY_RETRY_MS, pollIntervalMs), false);
        continue;
      }
      if (woken) continue;
      await sleep(pollIntervalMs, true);
    }
  })();

  return {
    async stop() {
      stopping = true;
      wake?.();
      clearTimeout(pruneTimer);
      await loop;
      await pruning;
      await wakeups.stop();
    },
    async backlog() {
      const row = await db.one<{ n: string }>('SELECT count(*) AS n FROM outbox');
      return Number(row?.n ?? 0);
    },
  };
}
