import type { CallInfo, ClientPolicy } from '../client/client.ts';
import { UpstreamError } from '../client/errors.ts';
import { currentContext } from '../trace/context.ts';
import { abortReason } from './abort.ts';
import { UpstreamRejectedError } from './errors.ts';

export interface BulkheadOptions {
  /** Calls to the dependency in flight at once. Default 64. */
  maxConcurrent?: number;
  /** Calls waiting for a slot; beyond that, calls are rejected at once. Default 64. */
  maxQueue?: number;
  /** The absolute deadline of the current unit of work; default: `currentContext()?.deadline`. */
  deadline?: () => number | undefined;
}

export interface BulkheadStats {
  maxConcurrent: number;
  maxQueue: number;
  /** Gauge: calls holding a slot. */
  inUse: number;
  /** Gauge: calls waiting for one. */
  queued: number;
  /** Counter: calls turned away because slots and queue were full. */
  rejected: number;
}

export interface Bulkhead extends ClientPolicy {
  readonly dependency: string;
  stats(): BulkheadStats;
}

export const BULKHEAD_DEFAULTS = { maxConcurrent: 64, maxQueue: 64 } as const;

interface Waiter {
  grant(): void;
}

/**
 * Limits concurrent calls to one dependency, so a slow dependency ties up at most `maxConcurrent` calls' worth of
 * memory and sockets instead of all of them, and queues at most `maxQueue` more before failing fast.
 *
 * Not cockatiel's BulkheadPolicy, which does not fit two ways: a queued call whose signal aborts stays in its
 * queue (holding a slot and unsettled until dequeued), and a dequeued call re-enters `execute`, so a newcomer
 * can take the freed slot and the queued call is then rejected after waiting. Here a freed slot is handed
 * straight to the oldest waiter, and an aborted or expired waiter leaves the queue at once.
 */
export function createBulkhead(dependency: string, options: BulkheadOptions = {}): Bulkhead {
  const maxConcurrent = options.maxConcurrent ?? BULKHEAD_DEFAULTS.maxConcurrent;
  const maxQueue = options.maxQueue ?? BULKHEAD_DEFAULTS.maxQueue;
  const deadlineOf = options.deadline ?? (() => currentContext()?.deadline);
  if (!(maxConcurrent >= 1) || !(maxQueue >= 0)) throw new RangeError('invalid bulkhead options');
  let inUse = 0;
  let rejected = 0;
  const queue: Waiter[] = [];

  const release = () => {
    const next = queue.shift();
    if (next) next.grant(); // the slot passes to the waiter: inUse is unchanged
    else inUse--;
  };

  /** Resolves once a slot was handed over; rejects if the caller aborts or its deadline passes first. */
  const wait = (call: CallInfo, signal: AbortSignal): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const leave = (reason: unknown) => {
        const i = queue.indexOf(waiter);
        if (i >= 0) queue.splice(i, 1);
        cleanup();
        reject(reason);
      };
      const onAbort = () => leave(abortReason(signal));
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        grant() {
          cleanup();
          resolve();
        },
      };
      queue.push(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
      const deadline = deadlineOf();
      if (deadline !== undefined) {
        // Waiting past the deadline is pointless: the attempt would fail at once anyway.
        timer = setTimeout(
          () => leave(new UpstreamError({ kind: 'timeout', service: call.service, operation: call.operation, message: `deadline passed while ${call.service}.${call.operation} waited for a ${dependency} bulkhead slot` })),
          Math.max(0, deadline - Date.now()),
        );
      }
    });

  /** The attempt in a slot, released when it settles (before the caller hears of it). */
  const run = <T>(attempt: (signal: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<T> => {
    let outcome: Promise<T>;
    try {
      outcome = attempt(signal);
    } catch (err) {
      release();
      return Promise.reject(err);
    }
    return outcome.then(
      (value) => {
        release();
        return value;
      },
      (err: unknown) => {
        release();
        throw err;
      },
    );
  };

  return {
    dependency,
    // Not async: a call that gets a slot at once (the normal case) costs one promise reaction, not an async
    // function's promise, its await and their async hooks (bench/rpc, docs/benchmarks.md).
    execute<T>(attempt: (signal: AbortSignal) => Promise<T>, call: CallInfo, signal: AbortSignal): Promise<T> {
      if (signal.aborted) return Promise.reject(abortReason(signal));
      if (inUse < maxConcurrent) {
        inUse++;
        return run(attempt, signal);
      }
      if (queue.length < maxQueue) return wait(call, signal).then(() => run(attempt, signal));
      rejected++;
      return Promise.reject(
        new UpstreamRejectedError({
          code: 'bulkhead_full',
          service: call.service,
          operation: call.operation,
          dependency,
          message: `${dependency} bulkhead full (${maxConcurrent} in flight, ${maxQueue} queued); ${call.service}.${call.operation} not attempted`,
        }),
      );
    },
    stats: () => ({ maxConcurrent, maxQueue, inUse, queued: queue.length, rejected }),
  };
}
