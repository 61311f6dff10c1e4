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

/** One cockatiel breaker (reset() replaces it) with its sampling window and the calls the fast path has in flight on it. */
interface Generation {
  policy: CircuitBreakerPolicy;
  sampling: SamplingBreaker;
  /** Calls cockatiel has in hand on this breaker (its `execute` not settled yet): slow-path calls and adopted ones. */
  pending: number;
  /** Fast-path calls in flight that cockatiel does not know about (yet): a list linked through the calls. */
  fast: FastCall | undefined;
}

/** A call let through by the fast path (see execute), and cockatiel's result for it once it was adopted. */
interface FastCall {
  call: CallInfo;
  signal: AbortSignal;
  adopted: Promise<unknown> | undefined;
  /** Once adopted: hands the attempt's outcome to cockatiel, from the call's own reaction (see adoptAll). */
  resolve: ((value: unknown) => void) | undefined;
  reject: ((error: unknown) => void) | undefined;
  prev: FastCall | undefined;
  next: FastCall | undefined;
}

const passOn = <T>(value: T): T => value;

/** Takes a fast-path call off its generation's list (it settled, or cockatiel adopted it). */
function unlink(gen: Generation, fast: FastCall): void {
  if (fast.prev) fast.prev.next = fast.next;
  else gen.fast = fast.next;
  if (fast.next) fast.next.prev = fast.prev;
  fast.prev = fast.next = undefined;
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
 *  - a typed state (discriminated union) and state-change events with from/to and manual;
 *  - a fast path for the closed circuit (see execute).
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

  const create = (): Generation => {
    const sampling = new SamplingBreaker({
      threshold,
      duration: windowMs,
      // SamplingBreaker wants a rate; it opens only when `calls >= windowMs · rate`. Half a call less than the
      // minimum keeps float rounding from demanding one call more than configured.
      minimumRps: ((minThroughput - 0.5) * 1000) / windowMs,
    });
    const created = circuitBreaker(
      handleWhen((err) => (err instanceof Aborted ? err.countsAsFailure : isBreakerFailure(err))),
      { breaker: sampling, halfOpenAfter },
    );
    created.onStateChange((s) => {
      if (created !== current.policy) return; // a breaker replaced by reset() may still finish a call
      const at = Date.now();
      const status = STATUS[s];
      if (status === 'open') transition({ status, since: at, halfOpenAt: at + lastHalfOpenDelay, reason: created.lastFailure && 'error' in created.lastFailure ? created.lastFailure.error : undefined });
      else if (status === 'closed') transition({ status });
      else transition({ status, since: at });
    });
    return { policy: created, sampling, pending: 0, fast: undefined };
  };
  let current = create();

  /** The call through cockatiel: its `execute`, our failure definition inside, our errors outside. */
  const enter = <T>(gen: Generation, run: () => Promise<T>, call: CallInfo, signal: AbortSignal): Promise<T> => {
    const { policy } = gen;
    gen.pending++;
    return policy
      .execute(async (): Promise<Outcome<T>> => {
        try {
          return { ok: true, value: await run() };
        } catch (error) {
          if (signal.aborted) {
            // The caller gave up: no evidence about the dependency. Neutral while closed (unhandled: not
            // counted); while probing, a failure, so the circuit re-opens instead of closing on nothing.
            throw new Aborted(error, policy.state === CircuitState.HalfOpen);
          }
          if (isBreakerFailure(error)) throw error;
          return { ok: false, error };
        }
      }, signal)
      .then(
        (outcome) => {
          gen.pending--;
          if (!outcome.ok) throw outcome.error;
          return outcome.value as T;
        },
        (err: unknown) => {
          gen.pending--;
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
        },
      );
  };

  /**
   * Hands every fast-path call in flight on `gen` to cockatiel, as if it had gone through cockatiel's `execute`
   * from the start. Done before anything else enters cockatiel (and before trip()), while the circuit is still
   * closed: so cockatiel sees them in its closed branch, exactly where they would have been. Each one's outcome
   * reaches cockatiel from the call's own reaction, so cockatiel counts outcomes in the order the attempts ended
   * (an attempt may have ended already, its reaction still queued), as it does when every call goes through it.
   */
  const adoptAll = (gen: Generation): void => {
    for (let fast = gen.fast; fast; ) {
      const next = fast.next;
      const adopted = fast;
      const outcome = new Promise<unknown>((resolve, reject) => {
        adopted.resolve = resolve;
        adopted.reject = reject;
      });
      adopted.adopted = enter(gen, () => outcome, adopted.call, adopted.signal);
      adopted.prev = adopted.next = undefined;
      fast = next;
    }
    gen.fast = undefined;
  };

  return {
    dependency,
    get state() {
      return state;
    },

    /**
     * The fast path. cockatiel's `execute` is two async functions (its own and its executor's `invoke`) around ours:
     * on Node 20 with AsyncLocalStorage in use, each of their promises pays the async hooks, which made the breaker
     * the largest part of the pipeline (bench/rpc: a chassis+pipeline call 162.7 k instructions with cockatiel on
     * every call, 156.4 k with this path), for what is, while the circuit is closed, one count in the sampling
     * window. So while the circuit is closed and cockatiel has no call in hand, a call goes
     * straight to the attempt with one promise reaction, and its outcome is put in the same `SamplingBreaker`
     * cockatiel's closed state puts it in (`success(Closed)`) — a success, a 4xx, or an aborted call (neutral).
     * Only what can change the state goes through cockatiel itself: a failure (counted by cockatiel, which decides
     * whether to open), every call while it is open, half-open or isolated, and trip(). Before anything enters
     * cockatiel, the fast-path calls in flight are handed to it (adoptAll), and no new call takes the fast path
     * until cockatiel is done with every call it has, so the circuit never leaves the closed state with a call
     * cockatiel does not know about: a call that started while closed and ends after it opened (or while it probes)
     * is counted, and can re-open it, exactly as if it had gone through cockatiel. Opening, half-open probes, the
     * backoff, trip/reset and the state-change events are all still cockatiel's.
     */
    execute<T>(attempt: (signal: AbortSignal) => Promise<T>, call: CallInfo, signal: AbortSignal): Promise<T> {
      const gen = current;
      if (gen.pending > 0 || gen.policy.state !== CircuitState.Closed) {
        adoptAll(gen);
        // The outcome reaches cockatiel one reaction after the attempt ends, as an adopted call's does: cockatiel
        // counts outcomes in the order the attempts ended, whichever way they came in.
        return enter(gen, () => attempt(signal).then(passOn), call, signal);
      }
      let promise: Promise<T>;
      try {
        promise = attempt(signal);
      } catch (err) {
        promise = Promise.reject(err);
      }
      const fast: FastCall = { call, signal, adopted: undefined, resolve: undefined, reject: undefined, prev: undefined, next: gen.fast };
      if (gen.fast) gen.fast.prev = fast;
      gen.fast = fast;
      return promise.then(
        (value) => {
          if (fast.adopted) {
            fast.resolve!(value);
            return fast.adopted as Promise<T>;
          }
          unlink(gen, fast);
          gen.sampling.success(CircuitState.Closed);
          return value;
        },
        (error: unknown) => {
          if (fast.adopted) {
            fast.reject!(error);
            return fast.adopted as Promise<T>;
          }
          unlink(gen, fast);
          // The caller gave up: neutral while closed (see enter); not counted at all.
          if (signal.aborted) throw error;
          if (!isBreakerFailure(error)) {
            gen.sampling.success(CircuitState.Closed); // the dependency answered (a 4xx): a success
            throw error;
          }
          // A failure: cockatiel counts it and decides whether to open; the caller sees the call end after that.
          // It enters cockatiel before the calls in flight are handed over, so that cockatiel counts outcomes in
          // the order the attempts ended (one that ended after this failure, in the same tick, is counted after it).
          const counted = enter(gen, () => promise, call, signal);
          adoptAll(gen);
          return counted;
        },
      );
    },

    trip() {
      if (isolation) return;
      adoptAll(current); // calls in flight end in cockatiel's closed branch, as if they had gone through it
      manual = true;
      try {
        isolation = current.policy.isolate();
      } finally {
        manual = false;
      }
    },

    reset() {
      const wasClosed = state.status === 'closed';
      isolation = undefined; // belongs to the old breaker, which is dropped
      current = create();
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
