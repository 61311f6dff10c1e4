import pg from 'pg';
import type { Logger } from '../log/logger.ts';
import { listen } from '../messaging/pg-listener.ts';
import type { Db, TxClient } from './db.ts';

/**
 * Wake-ups for workers that poll a table (the outbox relay; a service's own queue of work): a transaction that
 * committed rows for them wakes them at once instead of leaving the rows to their next poll.
 *
 * - A worker in this process (watchWakeups) is woken in memory.
 * - Otherwise (an api instance, whose worker runs elsewhere) the commit is followed by a NOTIFY on the channel, in a
 *   transaction of its own with synchronous_commit off. A transaction that NOTIFYs holds PostgreSQL's cluster-wide
 *   notify lock from its commit until the commit is on disk, so every notifying commit of every database would wait
 *   its turn for its own fsync; this commit writes nothing worth waiting for, so it holds the lock for an instant,
 *   and the commit it follows never waits for it.
 * - The first commit after a quiet spell notifies at once; under load, commits share one NOTIFY per NOTIFY_GAP_MS
 *   (one round trip per commit would cost more than the worker needs: it takes every waiting row when woken).
 * - A failed NOTIFY is dropped: the worker's poll still finds the rows.
 */
const NOTIFY_GAP_MS = 20;

interface Notifier {
  inFlight: boolean;
  /** A commit came while a NOTIFY was in flight or spaced out: one more is due. */
  pending: boolean;
  timer: NodeJS.Timeout | undefined;
  lastSentAt: number;
}

/** Per database, per channel. */
const localWorkers = new WeakMap<Db, Map<string, Set<() => void>>>();
const notifiers = new WeakMap<Db, Map<string, Notifier>>();

/** The channels a transaction will wake once it has committed. */
const wakesOf = new WeakMap<TxClient, Set<string>>();

/** Wakes the workers of `channel` once `tx` has committed (several calls in one transaction wake them once). */
export function wakeAfterCommit(tx: TxClient, channel: string): void {
  let channels = wakesOf.get(tx);
  if (channels === undefined) wakesOf.set(tx, (channels = new Set()));
  if (channels.has(channel)) return;
  channels.add(channel);
  const { db } = tx;
  tx.afterCommit(() => wakeCommitted(db, channel));
}

/** Wakes the workers of `channel` for rows already committed on `db`: in memory if any run here, else by NOTIFY. */
function wakeCommitted(db: Db, channel: string): void {
  const local = localWorkers.get(db)?.get(channel);
  if (local !== undefined && local.size > 0) local.forEach((wake) => wake());
  else notify(db, channel);
}

/** Calls `wake` whenever a transaction of this process commits rows for `channel` on `db`. Returns the unsubscriber. */
function onCommitted(db: Db, channel: string, wake: () => void): () => void {
  let channels = localWorkers.get(db);
  if (channels === undefined) localWorkers.set(db, (channels = new Map()));
  let set = channels.get(channel);
  if (set === undefined) channels.set(channel, (set = new Set()));
  set.add(wake);
  return () => set.delete(wake);
}

function notify(db: Db, channel: string): void {
  let channels = notifiers.get(db);
  if (channels === undefined) notifiers.set(db, (channels = new Map()));
  let notifier = channels.get(channel);
  if (notifier === undefined) channels.set(channel, (notifier = { inFlight: false, pending: false, timer: undefined, lastSentAt: -Infinity }));
  const n = notifier;
  if (n.inFlight || n.timer) {
    n.pending = true;
    return;
  }
  const wait = n.lastSentAt + NOTIFY_GAP_MS - Date.now();
  if (wait > 0) {
    n.timer = setTimeout(() => {
      n.timer = undefined;
      notify(db, channel);
    }, wait);
    n.timer.unref();
    return;
  }
  n.inFlight = true;
  n.pending = false;
  n.lastSentAt = Date.now();
  db.query(`BEGIN; SET LOCAL synchronous_commit TO off; NOTIFY ${pg.escapeIdentifier(channel)}; COMMIT`)
    .catch(() => undefined)
    .finally(() => {
      n.inFlight = false;
      if (n.pending) notify(db, channel);
    });
}

export interface Wakeups {
  stop(): Promise<void>;
}

/**
 * Calls `wake` when rows for `channel` are committed on `db`: in memory for this process's commits, by LISTEN for
 * other processes' (a dedicated connection, reconnecting on loss) and after every (re)connection, since a NOTIFY sent
 * while disconnected is lost. The worker still polls: wake-ups only shorten the wait.
 */
export function watchWakeups(db: Db, channel: string, wake: () => void, log: Logger): Wakeups {
  const unsubscribe = onCommitted(db, channel, wake);
  const listener = listen({ config: db.pool.options, channel, onNotify: wake, onConnect: wake, log });
  return {
    async stop() {
      unsubscribe();
      await listener.close();
    },
  };
}
