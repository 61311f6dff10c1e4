import type { Db } from '../data/db.ts';
import type { Logger } from '../log/logger.ts';
import type { Bus } from './bus.ts';
import type { EventEnvelope } from './envelope.ts';
import { OUTBOX_CHANNEL } from './outbox.ts';
import { listen } from './pg-listener.ts';

export interface OutboxRelayOptions {
  db: Db;
  bus: Bus;
  log: Logger;
  /** Rows per transaction. Default 100. */
  batchSize?: number;
  /** Fallback poll when no NOTIFY arrives (lost connection, missed wake-up). Default 1000 ms. */
  pollIntervalMs?: number;
}

export interface OutboxRelay {
  /** Stops relaying after the in-flight batch has been published and marked. */
  stop(): Promise<void>;
  /** Events recorded but not yet published. */
  backlog(): Promise<number>;
}

// One relay per service database at a time: SKIP LOCKED alone would let a second instance take the rows after
// the first one's batch and publish them concurrently, i.e. out of order. The others wait for the next round.
const RELAY_LOCK_SQL = `SELECT pg_try_advisory_xact_lock(hashtext('simplebank_outbox_relay')) AS locked`;

const MAX_BACKOFF_MS = 30_000;

/**
 * Publishes outbox rows in `seq` order and marks them published. A row is marked only after the bus has
 * acknowledged it, in the transaction that locked it, so a crash between the two republishes the row
 * (consumers dedupe on the event id) and never skips one.
 *
 * Order: rows are published in seq order, and a failed publish stops the batch so nothing overtakes it.
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

  const listener = listen({
    config: db.pool.options,
    channel: OUTBOX_CHANNEL,
    onNotify: nudge,
    onConnect: nudge,
    log,
  });

  /** Publishes one batch; returns how many rows it marked, or throws after marking those before a failure. */
  async function relayBatch(): Promise<{ published: number; more: boolean }> {
    let failure: unknown;
    const result = await db.tx(async (tx) => {
      const lock = await tx.query<{ locked: boolean }>(RELAY_LOCK_SQL);
      if (!lock.rows[0]?.locked) return { published: 0, more: false };
      const { rows } = await tx.query<{ seq: string; envelope: EventEnvelope }>(
        `SELECT seq, envelope FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [batchSize],
      );
      const done: string[] = [];
      for (const row of rows) {
        try {
          await bus.publish(row.envelope);
        } catch (err) {
          failure = err;
          break;
        }
        done.push(row.seq);
      }
      if (done.length > 0) {
        await tx.query('UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])', [done]);
      }
      return { published: done.length, more: rows.length === batchSize };
    });
    if (failure) throw failure;
    return result;
  }

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
      try {
        const r = await relayBatch();
        more = r.more;
        if (failures > 0) log.info({ afterFailures: failures }, 'outbox relay recovered');
        failures = 0;
        if (r.published > 0) log.debug({ published: r.published }, 'outbox relayed');
      } catch (err) {
        failures++;
        const backoff = Math.min(200 * 2 ** (failures - 1), MAX_BACKOFF_MS);
        log.warn({ err, failures, backoffMs: backoff }, 'outbox relay failed; events stay in the outbox for the next round');
        await sleep(backoff, false);
        continue;
      }
      if (more || woken || stopping) continue;
      await sleep(pollIntervalMs, true);
    }
  })();

  return {
    async stop() {
      stopping = true;
      wake?.();
      await loop;
      await listener.close();
    },
    async backlog() {
      const row = await db.one<{ n: string }>('SELECT count(*) AS n FROM outbox WHERE published_at IS NULL');
      return Number(row?.n ?? 0);
    },
  };
}
