import { AsyncLocalStorage } from 'node:async_hooks';
import { linkBatch } from '../trace/db-spans.ts';
import type { Db, TxClient } from './db.ts';

export interface BatchLimits {
  /** Items handled in one transaction, at most. */
  maxSize: number;
  /** Transactions (batches or lone items) in flight at once: the connections the batcher may hold. */
  transactions: number;
  /**
   * Least time in ms between the starts of two transactions while fewer than `maxSize` items wait (default 0: start
   * one as soon as a slot is free). Under a steady stream this trades up to `gatherMs` of latency for fewer, larger
   * batches: the same items in fewer transactions and fewer calls. The first item after a quiet spell never waits.
   */
  gatherMs?: number;
}

/** Runs a function in the work context (trace) an item arrived in. */
export type InContext = <T>(fn: () => T) => T;

export interface BatcherOptions<I, R> {
  limits: BatchLimits;
  /**
   * Handles several items in one transaction; resolves with one result per item, in order. It runs in the first
   * item's work context; `contexts[i]` runs a function in item i's (what it publishes or calls then continues that
   * item's trace).
   */
  batch(items: I[], contexts: InContext[]): Promise<R[]>;
  /** Handles one item on its own: a lone arrival, or each item of a batch that failed. */
  alone(item: I): Promise<R>;
  /** Told of every transaction started (its size: 1 for an item alone) and of every batch rolled back (metrics). */
  observer?: BatchObserver;
}

export interface BatchObserver {
  started(size: number): void;
  redone(size: number): void;
}

interface Waiting<I, R> {
  item: I;
  resolve(result: R): void;
  reject(err: unknown): void;
  inContext: InContext;
  /** Its batch failed: it goes again on its own, so only an item at fault fails. */
  alone: boolean;
}

/**
 * The engine of group commit (`groupCommit` below, and the inbox's consumers in messaging/inbox-batch.ts). Items
 * that arrive while `limits.transactions` transactions are busy wait and go together in the next one, up to
 * `maxSize`; items that arrive in one turn of the event loop go together too. An idle batcher hands each item to
 * `alone`. If a batch fails, each of its items is handled again by `alone`, ahead of later arrivals, so each caller
 * gets its own item's outcome and one bad item fails only itself.
 *
 * A batch runs in the work context of its first item; an item handled alone in its own.
 */
export function createBatcher<I, R>(options: BatcherOptions<I, R>): (item: I) => Promise<R> {
  const { limits } = options;
  if (!(limits.maxSize >= 1 && limits.transactions >= 1)) throw new Error('batch maxSize and transactions must be at least 1');
  const queue: Waiting<I, R>[] = [];
  const gatherMs = limits.gatherMs ?? 0;
  let running = 0;
  let scheduled = false;
  /** Set while the next flush waits out gatherMs. */
  let gathering: NodeJS.Timeout | undefined;
  let lastStart = -Infinity;

  // On the next turn of the event loop, so what arrives together (a bus fetch, a burst of requests) is one batch; or,
  // with gatherMs, once that long has passed since the last transaction started, unless a full batch is waiting.
  const schedule = () => {
    if (queue.length === 0 || running >= limits.transactions) return;
    const full = queue.length >= limits.maxSize;
    if (scheduled && !(full && gathering)) return;
    clearTimeout(gathering);
    gathering = undefined;
    scheduled = true;
    const wait = full ? 0 : lastStart + gatherMs - performance.now();
    if (wait > 0) gathering = setTimeout(flush, wait);
    else setImmediate(flush);
  };

  function flush() {
    scheduled = false;
    gathering = undefined;
    while (running < limits.transactions && queue.length > 0) {
      const items = queue[0]!.alone ? [queue.shift()!] : takeBatch();
      running++;
      lastStart = performance.now();
      void run(items).finally(() => {
        running--;
        schedule();
      });
    }
  }

  /** The leading items not marked alone, up to maxSize. */
  function takeBatch(): Waiting<I, R>[] {
    let n = 0;
    while (n < queue.length && n < limits.maxSize && !queue[n]!.alone) n++;
    return queue.splice(0, n);
  }

  async function run(items: Waiting<I, R>[]): Promise<void> {
    options.observer?.started(items.length);
    if (items.length === 1) {
      const w = items[0]!;
      await w.inContext(() => options.alone(w.item)).then(w.resolve, w.reject);
      return;
    }
    let results: R[];
    try {
      results = await items[0]!.inContext(() =>
        options.batch(
          items.map((w) => w.item),
          items.map((w) => w.inContext),
        ),
      );
    } catch {
      // Nothing of it committed: each again on its own, ahead of anything that arrived since.
      options.observer?.redone(items.length);
      for (const w of items) w.alone = true;
      queue.unshift(...items);
      return;
    }
    items.forEach((w, i) => w.resolve(results[i]!));
  }

  return (item) =>
    new Promise<R>((resolve, reject) => {
      queue.push({ item, resolve, reject, inContext: AsyncLocalStorage.snapshot(), alone: false });
      schedule();
    });
}

/** A unit of work for `groupCommit`: what one request would do in its own `db.tx`. */
export type TxWork<T> = (tx: TxClient) => Promise<T>;

/**
 * Group commit for request handlers: each call's work runs in a transaction shared with the calls that arrive
 * together, one after another, each seeing what the ones before it wrote (their deferred writes are sent ahead of
 * the next work's first query: TxClient.flushDeferred). One BEGIN and one COMMIT (one wait for the disk) for the
 * batch, and calls on one row (an account) queue in memory instead of on its lock.
 *
 * All or nothing: if any work throws (a refusal included) or the commit fails, the batch rolls back and every work
 * runs again alone in a transaction of its own, so each call gets exactly the outcome it would have had alone. A
 * work must therefore be safe to run twice up to its commit (nothing outside its transaction, or only what is safe
 * to repeat), as any retried transaction must.
 */
export function groupCommit(db: Db, limits: BatchLimits): <T>(work: TxWork<T>) => Promise<T> {
  const batcher = createBatcher<TxWork<unknown>, unknown>({
    limits,
    alone: (work) => db.tx(work),
    batch: (works, contexts) =>
      db.tx(async (tx) => {
        linkBatch(contexts);
        const results: unknown[] = [];
        for (const [i, work] of works.entries()) {
          tx.flushDeferred();
          results.push(await contexts[i]!(() => work(tx)));
        }
        return results;
      }),
  });
  return <T>(work: TxWork<T>) => batcher(work) as Promise<T>;
}
