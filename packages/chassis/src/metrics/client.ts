import { performance } from 'node:perf_hooks';
import type { CallInfo, ClientObserver } from '../client/client.ts';
import { isUpstreamError } from '../client/errors.ts';
import { LATENCY_BUCKETS, type ServiceMetrics } from './registry.ts';
import type { CounterFamily, CounterSeries, HistogramFamily, HistogramSeries } from './series.ts';

/**
 * How a dependency call (or one attempt of it) ended:
 * - `ok`: a declared success response;
 * - `client_error`: the dependency answered a 4xx other than 429 (it works; it refused this request, e.g. 404,
 *   409 insufficient funds) — kept apart so business refusals do not read as a failing dependency;
 * - `shed`: it said "not now": 429, or 503 `overloaded` (load shedding);
 * - `timeout`: we stopped waiting (attempt timeout, total timeout, deadline), or it answered 504;
 * - `rejected_breaker` / `rejected_bulkhead`: our own pipeline refused to send it (circuit open, bulkhead full);
 * - `error`: anything else — a 5xx, a connection failure, a body breaking the contract, a bug.
 */
export type CallOutcome = 'ok' | 'client_error' | 'shed' | 'timeout' | 'rejected_breaker' | 'rejected_bulkhead' | 'error';

const OUTCOMES: readonly CallOutcome[] = ['ok', 'client_error', 'shed', 'timeout', 'rejected_breaker', 'rejected_bulkhead', 'error'];
const INDEX = new Map(OUTCOMES.map((o, i) => [o, i]));

export function callOutcome(err: unknown): CallOutcome {
  if (!isUpstreamError(err)) return 'error';
  switch (err.kind) {
    case 'timeout':
      return 'timeout';
    case 'rejected':
      return err.code === 'bulkhead_full' ? 'rejected_bulkhead' : 'rejected_breaker';
    case 'http': {
      const status = err.status ?? 0;
      if (status === 429 || (status === 503 && err.code === 'overloaded')) return 'shed';
      if (status === 504) return 'timeout';
      return status >= 400 && status < 500 ? 'client_error' : 'error';
    }
    default:
      return 'error';
  }
}

type Labels = 'dependency' | 'operation' | 'outcome';

/** The series of one dependency's operations, by outcome, resolved on first use and kept. */
class OperationSeries<S> {
  readonly #byOperation = new Map<string, (S | undefined)[]>();
  constructor(
    readonly dependency: string,
    readonly make: (labels: Record<Labels, string>) => S,
  ) {}

  get(operation: string, outcome: CallOutcome): S {
    let slots = this.#byOperation.get(operation);
    if (!slots) this.#byOperation.set(operation, (slots = []));
    const i = INDEX.get(outcome)!;
    return (slots[i] ??= this.make({ dependency: this.dependency, operation, outcome }));
  }
}

export interface ClientMetrics {
  /**
   * Observer before every policy of a dependency's clients: one observation per logical call, its retries, backoff
   * and queueing for a bulkhead slot included (`http_client_request_duration_seconds`).
   */
  calls(dependency: string): ClientObserver<number>;
  /** Observer inside retry and breaker: one count per attempt that went out (`http_client_attempts_total`). */
  attempts(dependency: string): ClientObserver<undefined>;
}

/**
 * Dependency (client-side RED) metrics as two client observers (not policies: the client tells them how a call or
 * attempt ended from the reaction it has anyway, so they add no promise of their own). `dependency` and
 * `operation` come from code (the callee's contract), never from input, so the labels are bounded by the contracts.
 */
export function clientMetrics(metrics: ServiceMetrics): ClientMetrics {
  // Declared with the first dependency, so a service that calls nobody exports no empty client metrics.
  let families: { duration: HistogramFamily<Labels>; attempts: CounterFamily<Labels> } | undefined;
  const declare = () => (families ??= declareClientMetrics(metrics));

  return {
    calls(dependency) {
      const { duration } = declare();
      const series = new OperationSeries<HistogramSeries>(dependency, (l) => duration.series(l));
      return {
        start: () => performance.now(),
        settled(call: CallInfo, started: number, failed: boolean, error: unknown): void {
          series.get(call.operation, failed ? callOutcome(error) : 'ok').observe((performance.now() - started) / 1000);
        },
      };
    },

    attempts(dependency) {
      const { attempts } = declare();
      const series = new OperationSeries<CounterSeries>(dependency, (l) => attempts.series(l));
      return {
        start: () => undefined,
        settled(call: CallInfo, _state: undefined, failed: boolean, error: unknown): void {
          series.get(call.operation, failed ? callOutcome(error) : 'ok').inc();
        },
      };
    },
  };
}

function declareClientMetrics(metrics: ServiceMetrics): { duration: HistogramFamily<Labels>; attempts: CounterFamily<Labels> } {
  return {
    duration: metrics.histogram<Labels>({
      name: 'http_client_request_duration_seconds',
      help: 'calls to other services, retries included, by dependency, operation (contract route) and outcome',
      labelNames: ['dependency', 'operation', 'outcome'],
      buckets: LATENCY_BUCKETS,
    }),
    attempts: metrics.counter<Labels>({
      name: 'http_client_attempts_total',
      help: 'attempts sent to other services (first attempts and retries), by dependency, operation and outcome',
      labelNames: ['dependency', 'operation', 'outcome'],
    }),
  };
}
