// Client-side resilience: policies for `ClientOptions.policies`, one pipeline per dependency (see pipeline.ts,
// docs/resilience.md), plus fallbacks for callers.
export { UpstreamRejectedError, isRejectedError, parseRetryAfter, retryAfterMsOf, type RejectionCode } from './errors.ts';
export { isBreakerFailure, isRetryableFailure } from './classify.ts';
export { createRetryBudget, RETRY_BUDGET_DEFAULTS, type RetryBudget, type RetryBudgetOptions, type RetryBudgetStats } from './retry-budget.ts';
export { createRetryPolicy, fullJitterDelay, RETRY_DEFAULTS, type RetryEvent, type RetryOptions, type RetryPolicy, type RetryStats } from './retry.ts';
export {
  createCircuitBreaker,
  BREAKER_DEFAULTS,
  type BreakerState,
  type BreakerStateChange,
  type BreakerStatus,
  type CircuitBreaker,
  type CircuitBreakerOptions,
} from './circuit-breaker.ts';
export { createBulkhead, BULKHEAD_DEFAULTS, type Bulkhead, type BulkheadOptions, type BulkheadStats } from './bulkhead.ts';
export { createTotalTimeoutPolicy, type TotalTimeoutOptions } from './timeout.ts';
export { withFallback, createStaleCache, STALE_CACHE_DEFAULTS, type CacheResult, type FallbackOptions, type StaleCache, type StaleCacheOptions } from './fallback.ts';
export { RESILIENCE_DEFAULTS, resilienceEnvNames, resilienceOptionsFromEnv, resolveResilienceOptions, type ResilienceOptions } from './options.ts';
export { createResiliencePipeline, type ResilienceHooks, type ResiliencePipeline, type ResilienceStats } from './pipeline.ts';
export { noopPolicy } from './noop.ts';
