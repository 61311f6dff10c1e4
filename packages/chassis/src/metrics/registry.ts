import { collectDefaultMetrics, Gauge, Registry, type CollectFunction, type Metric } from 'prom-client';
import { EVENT_LOOP_SAMPLE_MS } from '../protection/event-loop-monitor.ts';
import { CounterFamily, HistogramFamily, type FamilyOptions, type HistogramOptions } from './series.ts';

/**
 * Latency buckets in seconds for requests, dependency calls and event handlers: from 1 ms (a call between two
 * services on one host takes about that) to 10 s (beyond any deadline the bank sets).
 */
export const LATENCY_BUCKETS: readonly number[] = Object.freeze([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

export type CounterOptions<L extends string> = Omit<FamilyOptions<L>, 'onOverflow'>;
export type MetricHistogramOptions<L extends string> = Omit<HistogramOptions<L>, 'onOverflow'>;

export interface GaugeOptions<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
  /** Sets the gauge's values at scrape time (`this.set(...)`); may be async. A gauge without one is set by its owner. */
  collect?: CollectFunction<Gauge<L>>;
}

/**
 * The metrics of one service instance: its own prom-client registry (not the global default one, so several
 * services in one process — tests — don't collide), with prom-client's process metrics, and the way to declare more.
 *
 * Declaring is get-or-create: the same name with the same kind and labels returns the metric already declared (a
 * setup that runs twice gets the same counter), anything else with that name throws.
 */
export interface ServiceMetrics {
  readonly registry: Registry;
  /** A counter; its name must end in `_total`. Keep `series(labels)` where it is incremented often. */
  counter<L extends string = never>(options: CounterOptions<L>): CounterFamily<L>;
  /** A histogram in base units (seconds, bytes); `buckets` are its upper bounds. */
  histogram<L extends string = never>(options: MetricHistogramOptions<L>): HistogramFamily<L>;
  /** A gauge (prom-client's): set by its owner, or read at scrape time with `collect`. */
  gauge<L extends string = never>(options: GaugeOptions<L>): Gauge<L>;
  /** The exposition (Prometheus text format) and its content type. */
  scrape(): Promise<{ contentType: string; body: string }>;
}

export interface ServiceMetricsOptions {
  /** prom-client's process metrics: CPU, memory, heap, event-loop delay, GC, handles. Default true. */
  defaultMetrics?: boolean;
  /** Most series per metric before new label sets are folded into one `other` series. Default 1000. */
  maxSeries?: number;
  /** Told once per metric whose labels overflowed: a label is being fed from unbounded input (a bug to fix). */
  onOverflow?: (metric: string) => void;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function checkNames(name: string, labelNames: readonly string[] = []): void {
  if (!NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
  for (const l of labelNames) {
    if (!LABEL.test(l) || l.startsWith('__')) throw new Error(`${name}: invalid label name ${JSON.stringify(l)}`);
  }
}

const sameLabels = (a: readonly string[], b: readonly string[] = []) => a.length === b.length && a.every((x, i) => x === b[i]);

export function createServiceMetrics(options: ServiceMetricsOptions = {}): ServiceMetrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  const onOverflow = options.onOverflow;
  const maxSeries = options.maxSeries;

  /** The metric already declared under `name`, if it is of the same kind and labels; throws on any other clash. */
  function existing<T>(name: string, kind: new (...args: never[]) => T, labelNames: readonly string[] | undefined, extra?: (found: T) => boolean): T | undefined {
    const found = registry.getSingleMetric(name) as unknown;
    if (found === undefined) return undefined;
    const labels = (found as { labelNames?: readonly string[] }).labelNames ?? [];
    if (found instanceof kind && sameLabels(labels, labelNames) && (extra?.(found) ?? true)) return found;
    throw new Error(`metric ${name} is already declared with another type, labels or buckets`);
  }

  return {
    registry,

    counter<L extends string = never>(o: CounterOptions<L>): CounterFamily<L> {
      checkNames(o.name, o.labelNames);
      if (!o.name.endsWith('_total')) throw new Error(`counter ${o.name} must be named *_total`);
      const found = existing(o.name, CounterFamily, o.labelNames);
      if (found) return found as unknown as CounterFamily<L>;
      const family = new CounterFamily<L>({ ...(maxSeries !== undefined ? { maxSeries } : {}), ...(onOverflow ? { onOverflow } : {}), ...o });
      // The families render through the registry's `get()` contract (series.ts); prom-client's type lists its own classes.
      registry.registerMetric(family as unknown as Metric);
      return family;
    },

    histogram<L extends string = never>(o: MetricHistogramOptions<L>): HistogramFamily<L> {
      checkNames(o.name, o.labelNames);
      const found = existing(o.name, HistogramFamily, o.labelNames, (h) => sameLabels(h.buckets.map(String), o.buckets.map(String)));
      if (found) return found as unknown as HistogramFamily<L>;
      const family = new HistogramFamily<L>({ ...(maxSeries !== undefined ? { maxSeries } : {}), ...(onOverflow ? { onOverflow } : {}), ...o });
      registry.registerMetric(family as unknown as Metric);
      return family;
    },

    gauge<L extends string = never>(o: GaugeOptions<L>): Gauge<L> {
      checkNames(o.name, o.labelNames);
      const found = existing(o.name, Gauge, o.labelNames);
      if (found) return found as Gauge<L>;
      return new Gauge<L>({
        name: o.name,
        help: o.help,
        labelNames: (o.labelNames ?? []) as L[],
        registers: [registry],
        ...(o.collect ? { collect: o.collect } : {}),
      });
    },

    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
