import type { ClientPolicy } from '../client/client.ts';
import { createBulkhead, type Bulkhead, type BulkheadStats } from './bulkhead.ts';
import { createCircuitBreaker, type BreakerState, type CircuitBreaker } from './circuit-breaker.ts';
import { resolveResilienceOptions, type ResilienceOptions } from './options.ts';
import { createRetryPolicy, type RetryEvent, type RetryPolicy, type RetryStats } from './retry.ts';
import { createRetryBudget, type RetryBudget, type RetryBudgetStats } from './retry-budget.ts';
import { createTotalTimeoutPolicy } from './timeout.ts';

/** Runtime hooks, not configuration: injectable randomness and clock for tests, and a retry observer. */
export interface ResilienceHooks {
  random?: () => number;
  now?: () => number;
  onRetry?: (event: RetryEvent) => void;
}

export interface ResilienceStats {
  dependency: string;
  /** `transitions`: state changes since creation (a counter). */
  breaker: BreakerState & { enabled: boolean; transitions: number };
  bulkhead: BulkheadStats & { enabled: boolean };
  budget: RetryBudgetStats;
  retry: RetryStats;
}

export interface ResiliencePipeline {
  dependency: string;
  options: Readonly<ResilienceOptions>;
  /** Pass as `ClientOptions.policies`; outermost first. */
  policies: ClientPolicy[];
  breaker: CircuitBreaker;
  budget: RetryBudget;
  bulkhead: Bulkhead;
  retry: RetryPolicy;
  stats(): ResilienceStats;
}

/**
 * The client policies for one dependency, in this order (outermost first):
 *
 *   [total timeout] → bulkhead → retry (+ budget) → circuit breaker → attempt (client.ts: per-attempt timeout)
 *
 * - total timeout (only when `totalTimeoutMs` > 0) outside everything, so it bounds queueing too;
 * - bulkhead outside retry: a call holds one slot across its retries, so retries cannot multiply concurrency;
 * - retry outside the breaker: each attempt is judged by the breaker, and an open circuit ends the retrying
 *   (a rejection is not retryable) instead of being waited out;
 * - breaker innermost: it sees every real attempt's outcome, which is what its failure rate is about.
 *
 * Create ONE pipeline per dependency per process and share it across that dependency's clients: the budget,
 * the breaker and the bulkhead protect the dependency as a whole. Disabled policies are still built (so
 * `stats()` and the types stay uniform) but left out of `policies`.
 */
export function createResiliencePipeline(dependency: string, overrides: Partial<ResilienceOptions> = {}, hooks: ResilienceHooks = {}): ResiliencePipeline {
  const options = Object.freeze(resolveResilienceOptions(overrides));
  const budget = createRetryBudget({
    ratio: options.budgetRatio,
    windowMs: options.budgetWindowMs,
    minRetriesPerSecond: options.budgetMinRetriesPerSecond,
    ...(hooks.now ? { now: hooks.now } : {}),
  });
  const retry = createRetryPolicy({
    maxAttempts: options.retryAttempts,
    baseDelayMs: options.retryBaseDelayMs,
    maxDelayMs: options.retryMaxDelayMs,
    maxRetryAfterMs: options.retryMaxRetryAfterMs,
    minAttemptMs: options.retryMinAttemptMs,
    budget,
    ...(hooks.random ? { random: hooks.random } : {}),
    ...(hooks.now ? { now: hooks.now } : {}),
    ...(hooks.onRetry ? { onRetry: hooks.onRetry } : {}),
  });
  const breaker = createCircuitBreaker(dependency, {
    threshold: options.breakerThreshold,
    windowMs: options.breakerWindowMs,
    minThroughput: options.breakerMinThroughput,
    halfOpenAfterMs: options.breakerHalfOpenAfterMs,
    halfOpenJitter: options.breakerHalfOpenJitter,
    ...(hooks.random ? { random: hooks.random } : {}),
  });
  let transitions = 0;
  breaker.onStateChange(() => {
    transitions++;
  });
  const bulkhead = createBulkhead(dependency, { maxConcurrent: options.bulkheadMaxConcurrent, maxQueue: options.bulkheadMaxQueue });

  const policies: ClientPolicy[] = [];
  if (options.totalTimeoutMs > 0) policies.push(createTotalTimeoutPolicy({ timeoutMs: options.totalTimeoutMs }));
  if (options.bulkheadEnabled) policies.push(bulkhead);
  if (options.retryAttempts > 1) policies.push(retry);
  if (options.breakerEnabled) policies.push(breaker);

  return {
    dependency,
    options,
    policies,
    breaker,
    budget,
    bulkhead,
    retry,
    stats: () => ({
      dependency,
      breaker: { ...breaker.state, enabled: options.breakerEnabled, transitions },
      bulkhead: { ...bulkhead.stats(), enabled: options.bulkheadEnabled },
      budget: budget.stats(),
      retry: retry.stats(),
    }),
  };
}
