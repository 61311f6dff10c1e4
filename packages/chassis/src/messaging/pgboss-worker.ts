import type { Logger } from '../log/logger.ts';
import { BUSY_RECHECK_MS } from './loop-lag.ts';

export interface ClaimedJob {
  id: string;
}

export interface QueueWorkerOptions<J extends ClaimedJob> {
  queue: string;
  /** Handlers running at once. Each fetch claims at most the free slots, so no job waits here unhandled. */
  concurrency: number;
  /** Fetch anyway this often when no wake-up came (a missed NOTIFY, a retry coming due). */
  pollIntervalMs: number;
  /**
   * Claims up to `limit` jobs and, in the same statement, marks `completing` (handled jobs) completed: a worker
   * under load completes what it handled on its way to fetching more, one round trip for both.
   */
  fetch(limit: number, completing: J[]): Promise<J[]>;
  /** Runs the handler. Resolves true to have the job completed; false when it was settled otherwise (failed). */
  handle(job: J): Promise<boolean>;
  /** Marks handled jobs completed, in one statement. */
  complete(jobs: J[]): Promise<void>;
  /** Renews the leases of jobs claimed here and not yet settled. */
  renew(jobs: J[]): Promise<void>;
  renewEveryMs: number;
  /**
   * True while the process is too busy to take on more events (loop-lag.ts): the worker then claims no new jobs
   * until it is not, checking every BUSY_RECHECK_MS. Running handlers go on. Without it, always free to claim.
   */
  busy?: () => boolean;
  log: Logger;
}

export interface QueueWorker {
  /** There may be new jobs: fetch as soon as a slot is free. Any number of calls before that fetch count once. */
  notify(): void;
  /** Stops fetching, waits up to graceMs for running handlers, records their completions; returns how many are still running. */
  stop(graceMs: number): Promise<number>;
}

/**
 * Works one pg-boss queue with our own loop instead of boss.work(), which handles a batch as a unit: it waits for
 * the batch's slowest handler before fetching again, fails the whole batch when one handler outlives the job's
 * expiry, and sleeps a polling interval even after a full batch. Here:
 *
 * - Slots: a handler's slot is freed as soon as it finishes, and the next fetch claims only free slots.
 * - Wake-ups coalesce: notify() only marks that there may be work, so a burst of NOTIFYs during a fetch costs one
 *   more fetch, not one each. With no wake-up the loop polls every pollIntervalMs.
 * - Completions are batched: handlers that finish while a completion is being written go in the next one, so
 *   under load a single UPDATE completes many jobs; and the next fetch takes the completions waiting at that
 *   moment along (one statement for both). A crash before they are written redelivers those jobs (the inbox
 *   absorbs the duplicates), exactly as a crash just before completing a single job would.
 * - Leases: jobs claimed here and not yet settled are renewed every renewEveryMs, so they expire only when this
 *   process dies or loses the database. A handler still running when stop() gives up is no longer renewed.
 * - Back-pressure: while `busy()` says the process is overloaded, no new job is claimed. Events wait on the bus
 *   (durably) rather than in this process's memory, and whatever else the process serves (its HTTP routes: placing
 *   an order) keeps its latency; the handlers catch up when the load allows.
 */
export function startQueueWorker<J extends ClaimedJob>(options: QueueWorkerOptions<J>): QueueWorker {
  const { log, queue } = options;
  let stopping = false;
  let maybeMore = true;
  let free = options.concurrency;
  let signal: (() => void) | undefined;
  const held = new Map<string, J>();
  const running = new Set<Promise<void>>();
  let toComplete: J[] = [];
  let flushing: Promise<void> | undefined;

  const wakeLoop = () => {
    const s = signal;
    signal = undefined;
    s?.();
  };

  /** Resolves true on timeout, false when woken. Without ms it waits for a wake-up only. */
  const pause = (ms?: number) =>
    new Promise<boolean>((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(() => { signal = undefined; resolve(true); }, ms);
      signal = () => {
        clearTimeout(timer);
        resolve(false);
      };
    });

  async function flushCompletions() {
    // Let the handlers finishing in this turn of the event loop join the first batch.
    await new Promise((r) => setImmediate(r));
    while (toComplete.length > 0) {
      const batch = toComplete;
      toComplete = [];
      try {
        await options.complete(batch);
      } catch (err) {
        // Left active, the jobs' leases lapse and they are redelivered; the inbox absorbs the duplicates.
        log.warn({ err, subscription: queue, jobs: batch.length }, 'could not mark events handled');
      }
      for (const job of batch) held.delete(job.id);
    }
  }

  function scheduleFlush() {
    if (flushing) return;
    flushing = flushCompletions().finally(() => {
      flushing = undefined;
      // Pushed after the loop's last check but before this ran.
      if (toComplete.length > 0) scheduleFlush();
    });
  }

  function start(job: J) {
    free--;
    held.set(job.id, job);
    const run = (async () => {
      let handled = false;
      try {
        handled = await options.handle(job);
      } catch (err) {
        log.error({ err, subscription: queue, jobId: job.id }, 'event handling crashed');
      }
      if (handled) {
        toComplete.push(job);
        scheduleFlush();
      } else {
        // Failed (recorded or not): either way it is not ours to renew any more.
        held.delete(job.id);
      }
      free++;
      wakeLoop();
    })();
    running.add(run);
    void run.finally(() => running.delete(run));
  }

  let renewing = false;
  const renewTimer = setInterval(() => {
    if (renewing || held.size === 0) return;
    renewing = true;
    options
      .renew([...held.values()])
      .catch((err: unknown) => log.warn({ err, subscription: queue }, 'could not renew event leases'))
      .finally(() => (renewing = false));
  }, options.renewEveryMs);
  renewTimer.unref();

  const loop = (async () => {
    while (!stopping) {
      if (free === 0) {
        await pause();
        continue;
      }
      if (!maybeMore) {
        if (await pause(options.pollIntervalMs)) maybeMore = true;
        continue;
      }
      if (options.busy?.()) {
        // Not woken early by a notify() (that would spin): only by the timer or stop().
        await new Promise((r) => setTimeout(r, BUSY_RECHECK_MS));
        continue;
      }
      // A notify() during the fetch sets it again: that fetch may have run before the new jobs committed.
      maybeMore = false;
      const limit = free;
      const completing = toComplete;
      toComplete = [];
      let jobs: J[];
      try {
        jobs = await options.fetch(limit, completing);
        for (const job of completing) held.delete(job.id);
      } catch (err) {
        log.warn({ err, subscription: queue }, 'could not fetch events; retrying after the polling interval');
        if (completing.length > 0) {
          toComplete.push(...completing);
          scheduleFlush();
        }
        await pause(options.pollIntervalMs);
        maybeMore = true;
        continue;
      }
      if (jobs.length >= limit) maybeMore = true;
      // Jobs claimed by a fetch that was in flight when stop() was called are handled too: they are ours now.
      for (const job of jobs) start(job);
    }
  })();

  return {
    notify() {
      maybeMore = true;
      wakeLoop();
    },
    async stop(graceMs) {
      stopping = true;
      wakeLoop();
      await loop;
      if (running.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([Promise.all(running), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
        clearTimeout(timer);
      }
      while (flushing) await flushing;
      clearInterval(renewTimer);
      return running.size;
    },
  };
}
