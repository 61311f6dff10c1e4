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
import { watchWakeups, type Db, type Logger, type QueuedWork, type TraceCarrier } from '@simplebank/chassis';
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

  /** Each claimed step in its own work context, under a span of its own. */
  const inWork = (w: ReserveWork): { work: ReserveWork; queued: QueuedWork } => ({
    work: w,
    queued: options.startQueuedWork('reserve order', w.traceparent ? { traceparent: w.traceparent } : undefined, { 'simplebank.order.id': w.orderId, 'simplebank.delivery.attempt': w.attempts + 1 }),
  });

  const stepsOf = (claimed: ReadonlyArray<{ work: ReserveWork; queued: QueuedWork }>) =>
    claimed.map(({ work, queued }) => ({ orderId: work.orderId, order: work.order, attempt: work.attempts + 1, inContext: queued.inContext }));

  /** One round: the due steps claimed, taken, their rows deleted, in one transaction. Returns how many it claimed. */
  async function round(): Promise<number> {
    let claimed: { work: ReserveWork; queued: QueuedWork }[] = [];
    try {
      await db.tx(async (tx) => {
        claimed = (await claimReserveWork(tx, options.batchSize)).map(inWork);
        if (claimed.length === 0) return;
        await saga.reserve(stepsOf(claimed), tx);
        reserveDone(tx, claimed.map((c) => c.work.orderId));
      });
    } catch (err) {
      if (claimed.length === 0) throw err; // the claim itself failed: nothing was taken
      claimed.forEach((c) => c.queued.end(err));
      if (claimed.length === 1) await failed(claimed[0]!.work, err);
      // One order's failure must not hold back the others: each again, alone (a failure alone is its own).
      else for (const { work } of claimed) await alone(work.orderId);
      return claimed.length;
    }
    claimed.forEach((c) => c.queued.end());
    return claimed.length;
  }

  /** One step in a transaction of its own; a failure is counted and the step postponed. */
  async function alone(orderId: string): Promise<void> {
    let step: { work: ReserveWork; queued: QueuedWork } | undefined;
    try {
      await db.tx(async (tx) => {
        const work = await claimReserveOf(tx, orderId);
        if (!work) return; // taken meanwhile by another instance, or already done
        step = inWork(work);
        await saga.reserve(stepsOf([step]), tx);
        reserveDone(tx, [orderId]);
      });
      step?.queued.end();
    } catch (err) {
      step?.queued.end(err);
      if (step) await failed(step.work, err);
      else log.warn({ err, orderId }, 'could not claim a reserve step; it stays queued');
    }
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
      const r: Promise<void> = round()
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
