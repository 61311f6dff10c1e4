/**
 * The saga's first step, taken from the reserve queue (migration 004): a row written with each new order, in the
 * same statement, and deleted in the transaction that takes the order past `pending`. It is the order's own
 * database that remembers the step is due, so the step needs no event: orders published one to itself before
 * (OrderSubmitted), which cost an outbox row, a bus job inserted, claimed and completed, and an inbox row for every
 * order, to reach this same process.
 *
 * - Woken when orders are queued (in memory, or by NOTIFY from an api instance: chassis wakeAfterCommit), and polls
 *   as a fallback.
 * - A round claims up to `batchSize` due steps in one transaction (group commit: one BEGIN and claim, every order's
 *   calls side by side, one COMMIT); up to `transactions` rounds run at once, at most one every `gatherMs` unless a
 *   backlog is being worked off (under a steady stream, fewer and larger rounds: fewer transactions here, fewer
 *   batch calls to accounts and fees). Any number of instances can share the queue: claimed rows are locked, and
 *   others skip them.
 * - A failed round is redone step by step, so one order's failure holds back no other. A failed step is counted and
 *   due again after a backoff (doubling from `backoffMs`, at most `maxBackoffMs`); the saga rejects the order once
 *   its attempts run out (`reserveMaxAttempts`). A process that dies mid-round leaves its rows to be claimed again.
 */
import { watchWakeups, type Db, type Logger, type QueuedWork, type TraceCarrier, type TxClient } from '@simplebank/chassis';
import { claimReserveOf, claimReserveWork, RESERVE_CHANNEL, reserveDone, reserveLater, type ReserveWork } from './data.ts';
import type { Saga } from './saga.ts';

export interface ReserveWorkerOptions {
  db: Db;
  saga: Saga;
  log: Logger;
  /** The chassis' ServiceContext.startQueuedWork: each step continues the trace of the request that placed its order. */
  startQueuedWork(name: string, trace: TraceCarrier | undefined, attributes: Record<string, string | number | boolean>): QueuedWork;
  batchSize: number;
  transactions: number;
  backoffMs: number;
  maxBackoffMs: number;
  pollIntervalMs: number;
  /** Least time between the starts of two rounds while there is no backlog (0: a round per wake-up). */
  gatherMs: number;
}

export interface ReserveWorker {
  /** Stops claiming; waits for the rounds in flight. */
  stop(): Promise<void>;
}

/** The delay before the next attempt of a step that has now failed `failures` times (1, 2, …). */
const retryDelayMs = (failures: number, backoffMs: number, maxBackoffMs: number): number =>
  Math.min(maxBackoffMs, backoffMs * 2 ** Math.min(failures - 1, 30));

export function startReserveWorker(options: ReserveWorkerOptions): ReserveWorker {
  const { db, saga, log } = options;
  let stopped = false;
  let woken = true;
  let running = 0;
  const rounds = new Set<Promise<void>>();

  /** A claimed step, in its own work context under a span of its own. */
  type Taken = { work: ReserveWork; queued: QueuedWork };
  const inWork = (w: ReserveWork): Taken => ({
    work: w,
    queued: options.startQueuedWork('reserve order', w.traceparent ? { traceparent: w.traceparent } : undefined, { 'simplebank.order.id': w.orderId, 'simplebank.delivery.attempt': w.attempts + 1 }),
  });

  /**
   * The steps `claim` finds, taken in one transaction with their rows deleted in its commit; returns how many it
   * claimed. If that fails, a single step's failure is counted; several are each taken again alone, so one order's
   * failure holds back no other (and a failure alone is its own). Throws only if the claim itself failed.
   */
  async function take(claim: (tx: TxClient) => Promise<ReserveWork[]>): Promise<number> {
    let taken: Taken[] = [];
    try {
      await db.tx(async (tx) => {
        taken = (await claim(tx)).map(inWork);
        if (taken.length === 0) return;
        await saga.reserve(taken.map(({ work, queued }) => ({ orderId: work.orderId, order: work.order, attempt: work.attempts + 1, inContext: queued.inContext })), tx);
        reserveDone(tx, taken.map((t) => t.work.orderId));
      });
    } catch (err) {
      if (taken.length === 0) throw err; // the claim itself failed: nothing was taken
      taken.forEach((t) => t.queued.end(err));
      if (taken.length === 1) await failed(taken[0]!.work, err);
      else {
        for (const { work } of taken) {
          await take((tx) => claimReserveOf(tx, work.orderId)).catch((e: unknown) => log.warn({ err: e, orderId: work.orderId }, 'could not claim a reserve step; it stays queued'));
        }
      }
      return taken.length;
    }
    taken.forEach((t) => t.queued.end());
    return taken.length;
  }

  /** A step's attempt failed (its transaction rolled back): counted, and due again after the backoff. */
  async function failed(work: ReserveWork, err: unknown): Promise<void> {
    const failures = work.attempts + 1;
    const delayMs = retryDelayMs(failures, options.backoffMs, options.maxBackoffMs);
    log.warn({ err, orderId: work.orderId, attempt: failures, retryInMs: delayMs }, 'reserve step failed; it will be taken again');
    await reserveLater(db, work.orderId, delayMs).catch((e: unknown) =>
      log.warn({ err: e, orderId: work.orderId }, 'could not postpone a failed reserve step; it is due again at once'),
    );
  }

  let lastStart = -Infinity;
  let backlog = false;
  let gatherTimer: NodeJS.Timeout | undefined;

  function pump(): void {
    while (!stopped && woken && running < options.transactions) {
      // Rounds start at most every gatherMs (unless a backlog is being worked off): the orders queued meanwhile are
      // taken together, in fewer and larger transactions and batch calls.
      const wait = backlog ? 0 : lastStart + options.gatherMs - Date.now();
      if (wait > 0) {
        gatherTimer ??= setTimeout(() => {
          gatherTimer = undefined;
          pump();
        }, wait);
        return;
      }
      woken = false;
      running++;
      lastStart = Date.now();
      const r: Promise<void> = take((tx) => claimReserveWork(tx, options.batchSize))
        .then((n) => {
          // A full round leaves more behind: go on without waiting for a wake-up.
          backlog = n === options.batchSize;
          if (backlog) woken = true;
        })
        .catch((err: unknown) => log.warn({ err }, 'reserve round failed; the steps stay queued'))
        .finally(() => {
          running--;
          rounds.delete(r);
          pump();
        });
      rounds.add(r);
    }
  }

  const wake = () => {
    woken = true;
    pump();
  };
  const wakeups = watchWakeups(db, RESERVE_CHANNEL, wake, log);
  // Steps postponed after a failure come due without a wake-up: the poll finds them.
  const poll = setInterval(wake, options.pollIntervalMs);
  poll.unref();
  pump();

  return {
    async stop() {
      stopped = true;
      clearInterval(poll);
      clearTimeout(gatherTimer);
      await wakeups.stop();
      while (rounds.size > 0) await Promise.all([...rounds]);
    },
  };
}
