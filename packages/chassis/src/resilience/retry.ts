import type { CallInfo, ClientPolicy } from '../client/client.ts';
import { currentContext } from '../trace/context.ts';
import { sleep } from './abort.ts';
import { isRetryableFailure } from './classify.ts';
import { retryAfterMsOf } from './errors.ts';
import type { RetryBudget } from './retry-budget.ts';

export interface RetryOptions {
  /** Attempts per call, the first included (1 = never retry). Default 3. */
  maxAttempts?: number;
  /** Backoff base: the n-th retry waits random(0, min(maxDelayMs, baseDelayMs·2^(n-1))). Default 50 ms. */
  baseDelayMs?: number;
  /** Backoff cap. Default 1000 ms. */
  maxDelayMs?: number;
  /** A `Retry-After` longer than this is not waited for: the call fails and the caller decides. Default 5000 ms. */
  maxRetryAfterMs?: number;
  /** Time an attempt needs at least; no retry starts unless this much is left before the deadline. Default 20 ms. */
  minAttemptMs?: number;
  /** Shared per dependency; without one, retries are only capped by `maxAttempts`. */
  budget?: RetryBudget;
  /** Uniform [0, 1) source for the jitter (injectable for tests). */
  random?: () => number;
  now?: () => number;
  /** The absolute deadline of the current unit of work; default: `currentContext()?.deadline`. */
  deadline?: () => number | undefined;
  /** Observes each retry before its backoff (logging, metrics). */
  onRetry?: (event: RetryEvent) => void;
}

export interface RetryEvent {
  call: CallInfo;
  /** The attempt about to be made (2 = first retry). */
  attempt: number;
  delayMs: number;
  error: unknown;
}

/** Why retries stopped short, counted for metrics. */
export interface RetryStats {
  retries: number;
  /** Retryable failures not retried because the deadline (or `minAttemptMs` before it) would be passed. */
  deadlineExceeded: number;
  /** Retryable failures not retried because the server asked to wait longer than `maxRetryAfterMs`. */
  retryAfterTooLong: number;
  /** Retryable failures not retried because the retry budget was spent. */
  budgetExhausted: number;
}

export interface RetryPolicy extends ClientPolicy {
  stats(): RetryStats;
}

export const RETRY_DEFAULTS = { maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 1_000, maxRetryAfterMs: 5_000, minAttemptMs: 20 } as const;

/**
 * Full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"): the whole interval is random, which
 * spreads a burst of failed callers out instead of having them retry in lock-step.
 * `retry` is 1 for the first retry.
 */
export function fullJitterDelay(retry: number, baseDelayMs: number, maxDelayMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (retry - 1));
  return random() * ceiling;
}

/**
 * Retries a call only when that is safe (`call.retryable`: idempotent route or idempotency key) and useful
 * (a retryable outcome, see classify.ts), within the attempt cap, the caller's deadline and the retry budget.
 */
export function createRetryPolicy(options: RetryOptions = {}): RetryPolicy {
  const maxAttempts = options.maxAttempts ?? RETRY_DEFAULTS.maxAttempts;
  const baseDelayMs = options.baseDelayMs ?? RETRY_DEFAULTS.baseDelayMs;
  const maxDelayMs = options.maxDelayMs ?? RETRY_DEFAULTS.maxDelayMs;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? RETRY_DEFAULTS.maxRetryAfterMs;
  const minAttemptMs = options.minAttemptMs ?? RETRY_DEFAULTS.minAttemptMs;
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const deadlineOf = options.deadline ?? (() => currentContext()?.deadline);
  const { budget, onRetry } = options;
  const stats: RetryStats = { retries: 0, deadlineExceeded: 0, retryAfterTooLong: 0, budgetExhausted: 0 };

  /** The wait before attempt `attempt + 1`, or undefined when the failure must be returned to the caller. */
  const plan = (err: unknown, attempt: number, call: CallInfo, signal: AbortSignal): number | undefined => {
    if (!call.retryable || attempt >= maxAttempts || signal.aborted || !isRetryableFailure(err)) return undefined;
    const t = now();
    const retryAfter = retryAfterMsOf(err, t);
    if (retryAfter !== undefined && retryAfter > maxRetryAfterMs) {
      stats.retryAfterTooLong++;
      return undefined;
    }
    // The server's Retry-After is a floor; jitter still applies on top of nothing shorter than it.
    const delay = Math.max(fullJitterDelay(attempt, baseDelayMs, maxDelayMs, random), retryAfter ?? 0);
    const deadline = deadlineOf();
    if (deadline !== undefined && t + delay + minAttemptMs > deadline) {
      stats.deadlineExceeded++;
      return undefined;
    }
    // Asked last, so budget is only spent on retries that will really be made.
    if (budget && !budget.tryAcquireRetry()) {
      stats.budgetExhausted++;
      return undefined;
    }
    return delay;
  };

  return {
    // Not async: an attempt that succeeds (the normal case) costs one promise reaction, not an async function's
    // promise, its await and their async hooks (bench/rpc, docs/benchmarks.md).
    execute<T>(attempt: (signal: AbortSignal) => Promise<T>, call: CallInfo, signal: AbortSignal): Promise<T> {
      try {
        budget?.recordAttempt();
      } catch (err) {
        return Promise.reject(err);
      }
      const run = (n: number): Promise<T> => {
        let outcome: Promise<T>;
        try {
          outcome = attempt(signal);
        } catch (err) {
          outcome = Promise.reject(err);
        }
        return outcome.then(undefined, (err: unknown) => {
          const delay = plan(err, n, call, signal);
          if (delay === undefined) throw err;
          stats.retries++;
          onRetry?.({ call, attempt: n + 1, delayMs: delay, error: err });
          return sleep(delay, signal).then(() => run(n + 1));
        });
      };
      return run(1);
    },
    stats: () => ({ ...stats }),
  };
}
