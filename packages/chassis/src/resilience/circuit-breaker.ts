import { CircuitState, SamplingBreaker, TaskCancelledError, circuitBreaker, handleWhen, isBrokenCircuitError } from 'cockatiel';
import type { CircuitBreakerPolicy, IBackoff, IHalfOpenAfterBackoffContext } from 'cockatiel';
import type { CallInfo, ClientPolicy } from '../client/client.ts';
import { abortReason } from './abort.ts';
import { isBreakerFailure } from './classify.ts';
import { UpstreamRejectedError } from './errors.ts';

export interface CircuitBreakerOptions {
  /** Opens when MORE than this share of calls in the window failed (0 < t < 1). Default 0.5. */
  threshold?: number;
  /** Sampling window. Default 10 000 ms. */
  windowMs?: number;
  /** Calls needed in the window before the rate can open the circuit (one failure of two is no signal). Default 20. */
  minThroughput?: number;
  /** How long the circuit stays open before one probe call is let through. Default 5000 ms. */
  halfOpenAfterMs?: number;
  /** ± share of `halfOpenAfterMs` picked at random each time it opens, so instances do not probe in step. Default 0.2. */
  halfOpenJitter?: number;
  random?: () => number;
}

export type BreakerStatus = 'closed' | 'open' | 'half-open' | 'isolated';

export type BreakerState =
  | { status: 'closed' }
  /** Failing fast; the next call after `halfOpenAt` becomes the probe. */
  | { status: 'open'; since: number; halfOpenAt: number; reason: unknown }
  /** One probe call is in flight; other calls wait for its outcome. */
  | { status: 'half-open'; since: number }
  /** Held open by `trip()` until `reset()`. */
  | { status: 'isolated'; since: number };

export interface BreakerStateChange {
  dependency: string;
  from: BreakerStatus;
  to: BreakerState;
  /** True when `trip()` or `reset()` caused it. */
  manual: boolean;
}

export interface CircuitBreaker extends ClientPolicy {
  readonly dependency: string;
  readonly state: BreakerState;
  /** Opens the circuit and holds it open (operator action, chaos drills) until `reset()`. */
  trip(): void;
  /** Closes the circuit and forgets the failure history. */
  reset(): void;
  /** Subscribes to state changes; returns the unsubscribe function. */
  onStateChange(listener: (change: BreakerStateChange) => void): () => void;
}

export const BREAKER_DEFAULTS = { threshold: 0.5, windowMs: 10_000, minThroughput: 20, halfOpenAfterMs: 5_000, halfOpenJitter: 0.2 } as const;

const STATUS: Record<CircuitState, BreakerStatus> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

/** An error of an aborted call, tagged with whether cockatiel must count it as a failure (see execute). */
class Aborted extends Error {
  constructor(
    readonly original: unknown,
    readonly countsAsFailure: boolean,
  ) {
    super('call aborted');
  }
}

/** Carries a non-failure error (e.g. a 404) through cockatiel as a value, so it counts as a success. */
interface Outcome<T> {
  ok: boolean;
  value?: T;
  error?: unknown;
}

/**
 * A circuit breaker per dependency: cockatiel's `circuitBreaker` with a `SamplingBreaker` (failure rate over a
 * time window, with a minimum throughput). What we add around it, minimally:
 *  - jitter on the half-open delay: cockatiel takes a backoff factory for `halfOpenAfter`, so that is native;
 *  - `reset()`: cockatiel can only close a circuit it isolated itself (`isolate().dispose()`), not one that
 *    opened on failures, so reset swaps in a fresh cockatiel breaker (old one's events are ignored);
 *  - the failure definition: cockatiel only knows "handled error" (failure) vs. "unhandled" (which counts as
 *    nothing while closed, and as success while half-open). We make 4xx count as successes (the dependency
 *    answered) by passing them through as values, and make an aborted probe count as a failure rather than
 *    closing the circuit on no evidence;
 *  - a typed state (discriminated union) and state-change events with from/to and manual.
 * Note: SamplingBreaker expires one 1-s slot per slot of activity, so after a quiet spell old samples linger
 * until traffic rotates them out; the half-open success resets them.
 */
export function createCircuitBreaker(dependency: string, options: CircuitBreakerOptions = {}): CircuitBreaker {
  const threshold = options.threshold ?? BREAKER_DEFAULTS.threshold;
  const windowMs = options.windowMs ?? BREAKER_DEFAULTS.windowMs;
  const minThroughput = options.minThroughput ?? BREAKER_DEFAULTS.minThroughput;
  const halfOpenAfterMs = options.halfOpenAfterMs ?? BREAKER_DEFAULTS.halfOpenAfterMs;
  const jitter = options.halfOpenJitter ?? BREAKER_DEFAULTS.halfOpenJitter;
  const random = options.random ?? Math.random;
  if (!(threshold > 0 && threshold < 1)) throw new RangeError(`breaker threshold must be in (0, 1), got ${threshold}`);
  if (!(minThroughput >= 1) || !(windowMs > 0) || !(halfOpenAfterMs >= 0) || !(jitter >= 0 && jitter < 1)) throw new RangeError('invalid circuit breaker options');

  const listeners = new Set<(change: BreakerStateChange) => void>();
  let state: BreakerState = { status: 'closed' };
  let lastHalfOpenDelay = halfOpenAfterMs;
  let isolation: { dispose(): void } | undefined;
  let manual = false;

  const halfOpenAfter = {
    next(_ctx: IHalfOpenAfterBackoffContext): IBackoff<IHalfOpenAfterBackoffContext> {
      lastHalfOpenDelay = halfOpenAfterMs * (1 + jitter * (2 * random() - 1));
      return { duration: lastHalfOpenDelay, next: halfOpenAfter.next };
    },
  };

  const transition = (to: BreakerState) => {
    const from = state.status;
    state = to;
    const change: BreakerStateChange = { dependency, from, to, manual };
    for (const listener of listeners) {
      try {
        listener(change);
      } catch (err) {
        // A broken listener (logging, metrics) must not fail the call that happened to change the state.
        process.emitWarning(`circuit breaker listener for ${dependency} threw: ${(err as Error).message}`);
      }
    }
  };

  const create = (): CircuitBreakerPolicy => {
    const breaker = new SamplingBreaker({
      threshold,
      duration: windowMs,
      // SamplingBreaker wants a rate; it opens only when `calls >= windowMs · rate`. Half a call less than the
      // minimum keeps float rounding from demanding one call more than configured.
      minimumRps: ((minThroughput - 0.5) * 1000) / windowMs,
    });
    const created = circuitBreaker(
      handleWhen((err) => (err instanceof Aborted ? err.countsAsFailure : isBreakerFailure(err))),
      { breaker, halfOpenAfter },
    );
    created.onStateChange((s) => {
      if (created !== policy) return; // a breaker replaced by reset() may still finish a call
      const at = Date.now();
      const status = STATUS[s];
      if (status === 'open') transition({ status, since: at, halfOpenAt: at + lastHalfOpenDelay, reason: created.lastFailure && 'error' in created.lastFailure ? created.lastFailure.error : undefined });
      else if (status === 'closed') transition({ status });
      else transition({ status, since: at });
    });
    return created;
  };
  let policy = create();

  return {
    dependency,
    get state() {
      return state;
    },

    async execute<T>(attempt: (signal: AbortSignal) => Promise<T>, call: CallInfo, signal: AbortSignal): Promise<T> {
      const current = policy;
      let outcome: Outcome<T>;
      try {
        outcome = await current.execute(async (): Promise<Outcome<T>> => {
          try {
            return { ok: true, value: await attempt(signal) };
          } catch (error) {
            if (signal.aborted) {
              // The caller gave up: no evidence about the dependency. Neutral while closed (unhandled: not
              // counted); while probing, a failure, so the circuit re-opens instead of closing on nothing.
              throw new Aborted(error, current.state === CircuitState.HalfOpen);
            }
            if (isBreakerFailure(error)) throw error;
            return { ok: false, error };
          }
        }, signal);
      } catch (err) {
        if (isBrokenCircuitError(err)) {
          const open = state.status === 'open' ? state : undefined;
          throw new UpstreamRejectedError({
            code: 'circuit_open',
            service: call.service,
            operation: call.operation,
            dependency,
            message: `circuit for ${dependency} is ${state.status === 'isolated' ? 'held open' : 'open'}; ${call.service}.${call.operation} not attempted`,
            ...(open ? { retryAfterMs: Math.max(0, open.halfOpenAt - Date.now()), cause: open.reason } : {}),
          });
        }
        if (err instanceof Aborted) throw err.original;
        // cockatiel's isTaskCancelledError is broken in 3.2.1 (tests the wrong property), hence instanceof.
        if (err instanceof TaskCancelledError) throw abortReason(signal);
        throw err;
      }
      if (!outcome.ok) throw outcome.error;
      return outcome.value as T;
    },

    trip() {
      if (isolation) return;
      manual = true;
      try {
        isolation = policy.isolate();
      } finally {
        manual = false;
      }
    },

    reset() {
      const wasClosed = state.status === 'closed';
      isolation = undefined; // belongs to the old breaker, which is dropped
      policy = create();
      if (wasClosed) return;
      manual = true;
      try {
        transition({ status: 'closed' });
      } finally {
        manual = false;
      }
    },

    onStateChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
