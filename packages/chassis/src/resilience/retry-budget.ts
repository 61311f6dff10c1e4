/**
 * A retry budget (after Finagle's RetryBudget and the gRPC retry throttle): retries may add at most `ratio` on
 * top of the first attempts seen over a sliding window, so when a dependency fails hard the callers add ~20 %
 * load instead of multiplying it by the attempt count (3 attempts at 100 % failure would triple it).
 * A floor of `minRetriesPerSecond` keeps retries possible at low traffic, where 20 % of a handful is zero.
 * Share one budget per dependency: it is the aggregate load on that dependency that it protects.
 */
export interface RetryBudgetOptions {
  /** Retries allowed per first attempt over the window. Default 0.2. */
  ratio?: number;
  /** Sliding window length. Default 10 000 ms. */
  windowMs?: number;
  /** Retries always allowed per second of window, whatever the ratio says. Default 10. */
  minRetriesPerSecond?: number;
  /** Buckets the window slides by. Default 10. */
  buckets?: number;
  /** Clock (injectable for tests). */
  now?: () => number;
}

export interface RetryBudgetStats {
  /** First attempts recorded since creation. */
  attempts: number;
  /** Retries granted since creation. */
  retries: number;
  /** Retries refused because the budget was spent. */
  budgetExhausted: number;
  /** First attempts and retries in the current window. */
  windowAttempts: number;
  windowRetries: number;
}

export interface RetryBudget {
  /** Records a first attempt (every call, retryable or not: each one earns `ratio` retries). */
  recordAttempt(): void;
  /** Takes one retry from the budget; false when it is spent (the caller must not retry). */
  tryAcquireRetry(): boolean;
  stats(): RetryBudgetStats;
}

export const RETRY_BUDGET_DEFAULTS = { ratio: 0.2, windowMs: 10_000, minRetriesPerSecond: 10, buckets: 10 } as const;

export function createRetryBudget(options: RetryBudgetOptions = {}): RetryBudget {
  const ratio = options.ratio ?? RETRY_BUDGET_DEFAULTS.ratio;
  const windowMs = options.windowMs ?? RETRY_BUDGET_DEFAULTS.windowMs;
  const buckets = options.buckets ?? RETRY_BUDGET_DEFAULTS.buckets;
  const minRetries = (options.minRetriesPerSecond ?? RETRY_BUDGET_DEFAULTS.minRetriesPerSecond) * (windowMs / 1000);
  const now = options.now ?? Date.now;
  if (!(ratio >= 0) || !(windowMs > 0) || !(buckets >= 1) || !(minRetries >= 0)) throw new RangeError('invalid retry budget options');
  const bucketMs = windowMs / buckets;

  // Ring of buckets; `ids[i]` is the bucket number (time / bucketMs) whose counts slot i holds. Recording is O(1);
  // summing the window (only when a call failed and wants a retry) is O(buckets).
  const ids = new Array<number>(buckets).fill(-1);
  const firsts = new Array<number>(buckets).fill(0);
  const retried = new Array<number>(buckets).fill(0);
  const totals = { attempts: 0, retries: 0, budgetExhausted: 0 };

  const slot = (): number => {
    const id = Math.floor(now() / bucketMs);
    const i = id % buckets;
    if (ids[i] !== id) {
      ids[i] = id;
      firsts[i] = 0;
      retried[i] = 0;
    }
    return i;
  };

  const windowSums = (): { attempts: number; retries: number } => {
    const current = Math.floor(now() / bucketMs);
    let attempts = 0;
    let retries = 0;
    for (let i = 0; i < buckets; i++) {
      if (current - ids[i]! < buckets) {
        attempts += firsts[i]!;
        retries += retried[i]!;
      }
    }
    return { attempts, retries };
  };

  return {
    recordAttempt() {
      totals.attempts++;
      firsts[slot()]!++;
    },
    tryAcquireRetry() {
      const i = slot();
      const w = windowSums();
      // The floor replaces the ratio at low traffic; it does not add to it, so at high traffic the extra
      // load stays at `ratio`.
      if (w.retries + 1 > Math.max(ratio * w.attempts, minRetries)) {
        totals.budgetExhausted++;
        return false;
      }
      retried[i]!++;
      totals.retries++;
      return true;
    },
    stats() {
      const w = windowSums();
      return { ...totals, windowAttempts: w.attempts, windowRetries: w.retries };
    },
  };
}
