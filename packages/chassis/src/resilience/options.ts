import { ConfigError } from '../config/config.ts';
import { BREAKER_DEFAULTS } from './circuit-breaker.ts';
import { BULKHEAD_DEFAULTS } from './bulkhead.ts';
import { RETRY_DEFAULTS } from './retry.ts';
import { RETRY_BUDGET_DEFAULTS } from './retry-budget.ts';

/**
 * Every tunable of a dependency's resilience pipeline. Flat, so each maps to one env variable:
 * `retryAttempts` ↔ `RESILIENCE_<DEP>_RETRY_ATTEMPTS` (per dependency) or `RESILIENCE_RETRY_ATTEMPTS` (all).
 */
export interface ResilienceOptions {
  /** Per-attempt timeout (client.ts), also capped by the caller's remaining deadline. Default 5000 ms. */
  attemptTimeoutMs: number;
  /** Keep-alive connections to the dependency (its connection pool, beside the bulkhead). Default 32. */
  connections: number;
  /** Attempts per call, the first included; 1 = no retries. Default 3. */
  retryAttempts: number;
  /** Full-jitter backoff base: retry n waits random(0, min(max, base·2^(n-1))). Default 50 ms. */
  retryBaseDelayMs: number;
  /** Backoff cap. Default 1000 ms. */
  retryMaxDelayMs: number;
  /** Longest `Retry-After` the client will wait out; longer fails the call. Default 5000 ms. */
  retryMaxRetryAfterMs: number;
  /** No retry starts with less than this left before the deadline. Default 20 ms. */
  retryMinAttemptMs: number;
  /** Retries allowed per first attempt over the budget window. Default 0.2. */
  budgetRatio: number;
  /** Retry budget window. Default 10 000 ms. */
  budgetWindowMs: number;
  /** Retries always allowed per second (the floor for low traffic). Default 10. */
  budgetMinRetriesPerSecond: number;
  /** Default true. */
  breakerEnabled: boolean;
  /** Opens when more than this share of attempts failed in the window. Default 0.5. */
  breakerThreshold: number;
  /** Default 10 000 ms. */
  breakerWindowMs: number;
  /** Attempts in the window before the failure rate may open the circuit. Default 20. */
  breakerMinThroughput: number;
  /** Open time before a probe. Default 5000 ms. */
  breakerHalfOpenAfterMs: number;
  /** ± share of the open time, random per opening. Default 0.2. */
  breakerHalfOpenJitter: number;
  /** Default true. */
  bulkheadEnabled: boolean;
  /** Default 64. */
  bulkheadMaxConcurrent: number;
  /** Default 64. */
  bulkheadMaxQueue: number;
  /** Overall limit per call (queue + attempts + backoff); 0 = off (the default: callers' deadlines rule). */
  totalTimeoutMs: number;
}

export const RESILIENCE_DEFAULTS: Readonly<ResilienceOptions> = Object.freeze({
  attemptTimeoutMs: 5_000,
  connections: 32,
  retryAttempts: RETRY_DEFAULTS.maxAttempts,
  retryBaseDelayMs: RETRY_DEFAULTS.baseDelayMs,
  retryMaxDelayMs: RETRY_DEFAULTS.maxDelayMs,
  retryMaxRetryAfterMs: RETRY_DEFAULTS.maxRetryAfterMs,
  retryMinAttemptMs: RETRY_DEFAULTS.minAttemptMs,
  budgetRatio: RETRY_BUDGET_DEFAULTS.ratio,
  budgetWindowMs: RETRY_BUDGET_DEFAULTS.windowMs,
  budgetMinRetriesPerSecond: RETRY_BUDGET_DEFAULTS.minRetriesPerSecond,
  breakerEnabled: true,
  breakerThreshold: BREAKER_DEFAULTS.threshold,
  breakerWindowMs: BREAKER_DEFAULTS.windowMs,
  breakerMinThroughput: BREAKER_DEFAULTS.minThroughput,
  breakerHalfOpenAfterMs: BREAKER_DEFAULTS.halfOpenAfterMs,
  breakerHalfOpenJitter: BREAKER_DEFAULTS.halfOpenJitter,
  bulkheadEnabled: true,
  bulkheadMaxConcurrent: BULKHEAD_DEFAULTS.maxConcurrent,
  bulkheadMaxQueue: BULKHEAD_DEFAULTS.maxQueue,
  totalTimeoutMs: 0,
});

type NumberKey = { [K in keyof ResilienceOptions]: ResilienceOptions[K] extends number ? K : never }[keyof ResilienceOptions];

/** Valid ranges: [min, max, integer?]. */
const RANGES: Record<NumberKey, [number, number, boolean]> = {
  attemptTimeoutMs: [1, 600_000, false],
  connections: [1, 10_000, true],
  retryAttempts: [1, 10, true],
  retryBaseDelayMs: [0, 60_000, false],
  retryMaxDelayMs: [0, 300_000, false],
  retryMaxRetryAfterMs: [0, 300_000, false],
  retryMinAttemptMs: [0, 60_000, false],
  budgetRatio: [0, 10, false],
  budgetWindowMs: [100, 3_600_000, false],
  budgetMinRetriesPerSecond: [0, 100_000, false],
  breakerThreshold: [0.01, 0.99, false],
  breakerWindowMs: [100, 3_600_000, false],
  breakerMinThroughput: [1, 1_000_000, true],
  breakerHalfOpenAfterMs: [0, 3_600_000, false],
  breakerHalfOpenJitter: [0, 0.9, false],
  bulkheadMaxConcurrent: [1, 100_000, true],
  bulkheadMaxQueue: [0, 1_000_000, true],
  totalTimeoutMs: [0, 3_600_000, false],
};

/** `retryAttempts` → `RETRY_ATTEMPTS`; `market-data` → `MARKET_DATA`. */
export const envSuffix = (name: string): string =>
  name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toUpperCase();

/** The env variables that configure `key` for `dependency`, most specific first. */
export function resilienceEnvNames(dependency: string, key: keyof ResilienceOptions): [perDependency: string, global: string] {
  return [`RESILIENCE_${envSuffix(dependency)}_${envSuffix(key)}`, `RESILIENCE_${envSuffix(key)}`];
}

function problemWith(key: keyof ResilienceOptions, value: unknown): string | undefined {
  if (typeof RESILIENCE_DEFAULTS[key] === 'boolean') return typeof value === 'boolean' ? undefined : 'must be a boolean';
  const [min, max, integer] = RANGES[key as NumberKey];
  if (typeof value !== 'number' || !Number.isFinite(value)) return 'must be a number';
  if (integer && !Number.isInteger(value)) return 'must be a whole number';
  if (value < min || value > max) return `must be between ${min} and ${max}`;
  return undefined;
}

/** Defaults completed with `overrides`, every value range-checked (throws a RangeError naming all bad ones). */
export function resolveResilienceOptions(overrides: Partial<ResilienceOptions> = {}): ResilienceOptions {
  const options = { ...RESILIENCE_DEFAULTS } as Record<keyof ResilienceOptions, number | boolean>;
  for (const [key, value] of Object.entries(overrides) as [keyof ResilienceOptions, unknown][]) {
    if (value !== undefined && key in RESILIENCE_DEFAULTS) options[key] = value as number | boolean;
  }
  const issues = (Object.keys(RESILIENCE_DEFAULTS) as (keyof ResilienceOptions)[]).flatMap((key) => {
    const problem = problemWith(key, options[key]);
    return problem ? [`${key} ${problem} (got ${String(options[key])})`] : [];
  });
  if (issues.length > 0) throw new RangeError(`invalid resilience options: ${issues.join('; ')}`);
  return options as unknown as ResilienceOptions;
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

/**
 * The options `env` sets for `dependency`: `RESILIENCE_<DEP>_<OPTION>` wins over `RESILIENCE_<OPTION>`; unset
 * options are left out (so the defaults apply). Throws a ConfigError naming every invalid variable.
 */
export function resilienceOptionsFromEnv(env: Record<string, string | undefined>, dependency: string): Partial<ResilienceOptions> {
  const found: Partial<Record<keyof ResilienceOptions, number | boolean>> = {};
  const issues: string[] = [];
  for (const key of Object.keys(RESILIENCE_DEFAULTS) as (keyof ResilienceOptions)[]) {
    const names = resilienceEnvNames(dependency, key);
    const name = names.find((n) => env[n] !== undefined && env[n]!.trim() !== '');
    if (!name) continue;
    const raw = env[name]!.trim();
    let value: number | boolean;
    if (typeof RESILIENCE_DEFAULTS[key] === 'boolean') {
      const lower = raw.toLowerCase();
      if (!TRUE.has(lower) && !FALSE.has(lower)) {
        issues.push(`${name}: must be true or false (got "${raw}")`);
        continue;
      }
      value = TRUE.has(lower);
    } else {
      value = Number(raw);
    }
    const problem = problemWith(key, value);
    if (problem) issues.push(`${name}: ${problem} (got "${raw}")`);
    else found[key] = value;
  }
  if (issues.length > 0) throw new ConfigError(`resilience of ${dependency}`, issues);
  return found as Partial<ResilienceOptions>;
}
