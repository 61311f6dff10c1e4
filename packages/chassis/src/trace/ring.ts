import type { Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';

/**
 * The last `capacity` finished spans of this process, for the admin endpoint and `simplebank trace`: a span
 * processor that keeps ended spans in a fixed array, overwriting the oldest. Adding a span is one store and one
 * increment, with no index to maintain; finding a trace scans the ring, which only an operator's request does.
 * Memory is bounded by the count (a span with its attributes is roughly 1 KB).
 */
export class SpanRing implements SpanProcessor {
  readonly #spans: (ReadableSpan | undefined)[];
  #next = 0;
  #total = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`span ring capacity must be a positive whole number, got ${capacity}`);
    this.#spans = new Array<ReadableSpan | undefined>(capacity);
  }

  onStart(_span: Span, _parentContext: Context): void {}

  onEnd(span: ReadableSpan): void {
    this.#spans[this.#next] = span;
    this.#next = this.#next + 1 === this.capacity ? 0 : this.#next + 1;
    this.#total++;
  }

  /** Spans ended since start, including those already overwritten. */
  get total(): number {
    return this.#total;
  }

  /** The spans of one trace still in the ring, oldest first. */
  trace(traceId: string): ReadableSpan[] {
    const out: ReadableSpan[] = [];
    this.#each((span) => {
      if (span.spanContext().traceId === traceId) out.push(span);
    });
    return out;
  }

  /** The most recent traces (newest first): trace id, its spans in the ring, and its earliest span. */
  recentTraces(limit: number): { traceId: string; spans: number; first: ReadableSpan }[] {
    const byTrace = new Map<string, { traceId: string; spans: number; first: ReadableSpan; last: number }>();
    let i = 0;
    this.#each((span) => {
      const traceId = span.spanContext().traceId;
      const seen = byTrace.get(traceId);
      if (!seen) byTrace.set(traceId, { traceId, spans: 1, first: span, last: i });
      else {
        seen.spans++;
        seen.last = i;
        if (earlier(span, seen.first)) seen.first = span;
      }
      i++;
    });
    return [...byTrace.values()]
      .sort((a, b) => b.last - a.last)
      .slice(0, limit)
      .map(({ traceId, spans, first }) => ({ traceId, spans, first }));
  }

  /** Oldest first. */
  #each(fn: (span: ReadableSpan) => void): void {
    const n = this.#spans.length;
    for (let k = 0; k < n; k++) {
      const span = this.#spans[(this.#next + k) % n];
      if (span) fn(span);
    }
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const earlier = (a: ReadableSpan, b: ReadableSpan): boolean => a.startTime[0] < b.startTime[0] || (a.startTime[0] === b.startTime[0] && a.startTime[1] < b.startTime[1]);
