/**
 * Counter and histogram families whose series are resolved once and then updated with no lookup.
 *
 * prom-client's own `labels(...)` child does not keep anything resolved: every `observe`/`inc` rebuilds the label
 * object, validates it and hashes it into a string to find the series. On the request path (two or three
 * observations per request) that is allocation and string work per call. Here `series(labels)` does that work once
 * and returns the cell itself; callers keep it (per route, per dependency operation, per subscription), and an
 * observation is a bucket scan and three additions. The families render through prom-client's registry (they
 * implement what `Registry.getMetricsAsString` reads: name, help, type, get()), so the exposition format, escaping
 * and content type stay prom-client's.
 */

export type LabelValues<L extends string> = Readonly<Record<L, string>>;

export interface CounterSeries {
  inc(value?: number): void;
}

export interface HistogramSeries {
  /** One observation, in the metric's base unit (seconds). Non-finite or negative values are dropped. */
  observe(value: number): void;
}

/** What prom-client's registry reads of a metric (registry.js, getMetricsAsString). */
interface RenderedValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

export interface FamilyOptions<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
  /**
   * Most series this family keeps. A label set past it is counted in one overflow series whose labels are all
   * `other`, and `onOverflow` is told once: a bug that puts ids into labels cannot exhaust memory or Prometheus.
   */
  maxSeries?: number;
  onOverflow?: (family: string) => void;
  /** Runs before each scrape renders the family (counters fed from totals kept elsewhere). */
  collect?: () => void | Promise<void>;
}

export const DEFAULT_MAX_SERIES = 1000;
const OVERFLOW = 'other';

abstract class Family<L extends string, S> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly aggregator = 'sum';
  protected readonly cells = new Map<string, { labels: LabelValues<L>; cell: S }>();
  readonly #maxSeries: number;
  readonly #onOverflow: ((family: string) => void) | undefined;
  readonly #collect: (() => void | Promise<void>) | undefined;
  #overflowed = false;

  constructor(options: FamilyOptions<L>) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
    this.#maxSeries = options.maxSeries ?? DEFAULT_MAX_SERIES;
    this.#onOverflow = options.onOverflow;
    this.#collect = options.collect;
  }

  protected abstract newCell(): S;

  /** The cell of one label set: created on first use, the same object afterwards. Keep it. */
  protected resolve(labels: LabelValues<L>): S {
    let key = '';
    for (const n of this.labelNames) {
      const v = labels[n];
      if (typeof v !== 'string') throw new TypeError(`${this.name}: label ${n} must be a string, got ${typeof v}`);
      key += `${v}\u0000`;
    }
    let entry = this.cells.get(key);
    if (entry) return entry.cell;
    if (this.cells.size >= this.#maxSeries) {
      if (!this.#overflowed) {
        this.#overflowed = true;
        this.#onOverflow?.(this.name);
      }
      const other = Object.fromEntries(this.labelNames.map((n) => [n, OVERFLOW])) as LabelValues<L>;
      key = this.labelNames.map(() => `${OVERFLOW}\u0000`).join('');
      entry = this.cells.get(key);
      if (entry) return entry.cell;
      labels = other;
    }
    entry = { labels: { ...labels }, cell: this.newCell() };
    this.cells.set(key, entry);
    return entry.cell;
  }

  protected abstract render(): RenderedValue[];

  /** prom-client's registry calls this on every scrape. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: RenderedValue[] }> {
    if (this.#collect) await this.#collect();
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.render() };
  }

  abstract readonly type: 'counter' | 'histogram';
  abstract reset(): void;
}

class CounterCell implements CounterSeries {
  value = 0;
  inc(value = 1): void {
    if (value > 0 && Number.isFinite(value)) this.value += value;
  }
}

export class CounterFamily<L extends string = never> extends Family<L, CounterCell> {
  readonly type = 'counter';

  protected newCell(): CounterCell {
    return new CounterCell();
  }

  /** The series of one label set (created at 0, so it is exported before its first increment). */
  series(labels: LabelValues<L>): CounterSeries {
    return this.resolve(labels);
  }

  /** Convenience for rare events; on a hot path keep `series(labels)` instead. */
  inc(labels: LabelValues<L>, value = 1): void {
    this.resolve(labels).inc(value);
  }

  protected render(): RenderedValue[] {
    return [...this.cells.values()].map(({ labels, cell }) => ({ labels, value: cell.value }));
  }

  reset(): void {
    for (const { cell } of this.cells.values()) cell.value = 0;
  }
}

class HistogramCell implements HistogramSeries {
  sum = 0;
  count = 0;
  /** Per bucket, not cumulative; the last slot is above the largest bound (+Inf). */
  readonly counts: Float64Array;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!(value >= 0) || value === Infinity) return;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

export interface HistogramOptions<L extends string> extends FamilyOptions<L> {
  /** Upper bounds, ascending, in the base unit. */
  buckets: readonly number[];
}

export class HistogramFamily<L extends string = never> extends Family<L, HistogramCell> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];

  constructor(options: HistogramOptions<L>) {
    super(options);
    if ((options.labelNames as readonly string[] | undefined)?.includes('le')) throw new Error(`${options.name}: "le" is reserved for histogram buckets`);
    const b = [...options.buckets];
    if (b.length === 0 || b.some((x, i) => !Number.isFinite(x) || (i > 0 && x <= b[i - 1]!))) throw new Error(`${options.name}: buckets must be finite and ascending`);
    this.buckets = Object.freeze(b);
  }

  protected newCell(): HistogramCell {
    return new HistogramCell(this.buckets);
  }

  series(labels: LabelValues<L>): HistogramSeries {
    return this.resolve(labels);
  }

  observe(labels: LabelValues<L>, value: number): void {
    this.resolve(labels).observe(value);
  }

  protected render(): RenderedValue[] {
    const out: RenderedValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const { labels, cell } of this.cells.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        cumulative += cell.counts[i]!;
        out.push({ metricName: bucket, labels: { ...labels, le: this.buckets[i]! }, value: cumulative });
      }
      out.push({ metricName: bucket, labels: { ...labels, le: '+Inf' }, value: cell.count });
      out.push({ metricName: `${this.name}_sum`, labels, value: cell.sum });
      out.push({ metricName: `${this.name}_count`, labels, value: cell.count });
    }
    return out;
  }

  reset(): void {
    for (const { cell } of this.cells.values()) {
      cell.counts.fill(0);
      cell.sum = 0;
      cell.count = 0;
    }
  }
}

/**
 * Feeds a counter series from a running total kept elsewhere (a policy's or the load shedder's stats): each call
 * adds what the total grew by since the last one. A total that went down (its owner was rebuilt) restarts the base.
 */
export function followTotal(series: CounterSeries): (total: number) => void {
  let last = 0;
  return (total) => {
    if (total > last) series.inc(total - last);
    last = total;
  };
}
