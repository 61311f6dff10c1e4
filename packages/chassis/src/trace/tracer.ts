// The chassis' own tracer and span: OpenTelemetry API objects (a `Tracer`, `Span`s that are also SDK
// `ReadableSpan`s), recorded without the SDK's `Tracer`/`SpanImpl`.
//
// Why: with every request traced (bench/rpc, 100 % sampling), the SDK's span cost more than the rest of the
// chassis' per-call work. For each span its Tracer copies and validates the attributes twice (sanitizeAttributes),
// builds a sampling result and two meter attribute objects (a no-op meter's, still made), wraps the parent in a new
// Context just so the sampler can read it back, and SpanImpl reads both clocks and converts them to [s, ns] pairs at
// start and again at end, validates every attribute key and value against the span limits one by one, and goes
// through MultiSpanProcessor's loop over processors whose onStart is empty. Here a span keeps two numbers for its
// time and the (frozen, already valid) attribute object the chassis hands it, copied only if something is added;
// the `[s, ns]` times, the copy of the attributes and the context passed to onStart exist only when something
// reads them: a ring read (admin endpoint) or an OTLP batch, off the request path. Spans carry the same content
// as the SDK's: same ids, names, kinds, parents, attributes, events, status, resource, scope, times (start in ms of
// Date.now(), duration from performance.now(), as the SDK does), and processors (ring, BatchSpanProcessor,
// test exporters) receive them as ReadableSpans.
import {
  diag,
  ROOT_CONTEXT,
  SamplingDecision,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type AttributeValue,
  type Context,
  type Exception,
  type HrTime,
  type Link,
  type Span,
  type SpanAttributes,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  type TimeInput,
  type Tracer,
  context as otelContext,
} from '@opentelemetry/api';
import { addHrTimes, hrTimeDuration, isAttributeValue, isTimeInputHrTime, millisToHrTime, sanitizeAttributes, timeInputToHrTime, type InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import { AlwaysOffSampler, AlwaysOnSampler, BatchSpanProcessor, ParentBasedSampler, SimpleSpanProcessor, type ReadableSpan, type Sampler, type SpanProcessor, type TimedEvent } from '@opentelemetry/sdk-trace-base';
import { performance } from 'node:perf_hooks';
import { randomHex } from './ids.ts';
import { SpanRing } from './ring.ts';

/** The SDK's default span limits (OTEL_SPAN_*_COUNT_LIMIT, OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT), read once. */
export interface SpanLimits {
  attributeCountLimit: number;
  attributeValueLengthLimit: number;
  eventCountLimit: number;
  attributePerEventCountLimit: number;
}

const envLimit = (names: string[], fallback: number): number => {
  for (const n of names) {
    const raw = process.env[n];
    if (raw !== undefined && raw.trim() !== '') {
      const v = Number(raw);
      if (Number.isFinite(v) && v >= 0) return v;
    }
  }
  return fallback;
};

export function spanLimitsFromEnv(): SpanLimits {
  return {
    attributeCountLimit: envLimit(['OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT', 'OTEL_ATTRIBUTE_COUNT_LIMIT'], 128),
    attributeValueLengthLimit: envLimit(['OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT', 'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT'], Infinity),
    eventCountLimit: envLimit(['OTEL_SPAN_EVENT_COUNT_LIMIT'], 128),
    attributePerEventCountLimit: envLimit(['OTEL_SPAN_ATTRIBUTE_PER_EVENT_COUNT_LIMIT', 'OTEL_ATTRIBUTE_COUNT_LIMIT'], 128),
  };
}

const NO_LINKS: Link[] = [];
const NO_EVENTS: TimedEvent[] = [];
const EMPTY: Attributes = Object.freeze({});

/** One span of a ChassisTracer: the OpenTelemetry `Span` the chassis records into, and the `ReadableSpan` exporters read. */
export class ChassisSpan implements Span, ReadableSpan {
  #links: Link[];
  #attributes: Attributes;
  /** Whether #attributes is the caller's (frozen) object, not to be changed. */
  #shared: boolean;
  /**
   * Attributes added to a shared set, as key, value, key, value…: merged into a copy only when the attributes are
   * read (export, ring read), not on the request path (the response status every HTTP span gets).
   */
  #added: (string | AttributeValue)[] | undefined;
  #attributeCount: number;
  #droppedAttributes = 0;
  #events: TimedEvent[] = NO_EVENTS;
  #droppedEvents = 0;
  #status: SpanStatus | undefined;
  /** Date.now() at start (the SDK's start time: whole milliseconds). */
  readonly #startMs: number;
  /** performance.now() at start; the duration is measured on it, as the SDK does. */
  readonly #perfStart: number;
  /** Milliseconds, -1 while running. */
  #durationMs = -1;
  #endTime: HrTime | undefined;
  #startTime: HrTime | undefined;

  constructor(
    readonly tracer: ChassisTracer,
    readonly _spanContext: SpanContext,
    public name: string,
    readonly kind: SpanKind,
    readonly parentSpanContext: SpanContext | undefined,
    attributes: Attributes,
    attributesShared: boolean,
    startTime: TimeInput | undefined,
    links: Link[],
  ) {
    this.#links = links;
    this.#attributes = attributes;
    this.#shared = attributesShared;
    let n = 0;
    for (const k in attributes) if (Object.hasOwn(attributes, k)) n++;
    this.#attributeCount = n;
    if (n > tracer.limits.attributeCountLimit || (tracer.limits.attributeValueLengthLimit !== Infinity && n > 0)) this.#relimit();
    this.#perfStart = performance.now();
    if (startTime === undefined) this.#startMs = Date.now();
    else {
      // An explicit start time: kept exactly, duration from the wall clock (as the SDK does).
      this.#startTime = timeInputToHrTime(startTime);
      this.#startMs = this.#startTime[0] * 1e3 + this.#startTime[1] / 1e6;
      this.#perfStart = NaN;
    }
  }

  /** Applies the count and length limits to the initial attributes (only when they could bite). */
  #relimit(): void {
    const all = this.#attributes;
    this.#attributes = {};
    this.#shared = false;
    this.#attributeCount = 0;
    for (const k in all) if (Object.hasOwn(all, k)) this.setAttribute(k, all[k]!);
  }

  spanContext(): SpanContext {
    return this._spanContext;
  }

  get ended(): boolean {
    return this.#durationMs >= 0;
  }

  isRecording(): boolean {
    return this.#durationMs < 0;
  }

  #isEnded(): boolean {
    if (this.#durationMs < 0) return false;
    const sc = this._spanContext;
    diag.warn(`Cannot execute the operation on ended Span {traceId: ${sc.traceId}, spanId: ${sc.spanId}}`);
    return true;
  }

  setAttribute(key: string, value: AttributeValue): this {
    if (value === null || value === undefined || this.#isEnded()) return this;
    if (key.length === 0) {
      diag.warn(`Invalid attribute key: ${key}`);
      return this;
    }
    if (!isAttributeValue(value)) {
      diag.warn(`Invalid attribute value set for key: ${key}`);
      return this;
    }
    const added = this.#added;
    if (added !== undefined) {
      for (let i = 0; i < added.length; i += 2)
        if (added[i] === key) {
          added[i + 1] = this.#truncate(value);
          return this;
        }
    }
    const isNew = !Object.hasOwn(this.#attributes, key);
    if (isNew && this.#attributeCount >= this.tracer.limits.attributeCountLimit) {
      this.#droppedAttributes++;
      return this;
    }
    if (this.#shared) {
      if (isNew) {
        if (added === undefined) this.#added = [key, this.#truncate(value)];
        else added.push(key, this.#truncate(value));
        this.#attributeCount++;
        return this;
      }
      this.#merge();
    }
    (this.#attributes as Record<string, AttributeValue>)[key] = this.#truncate(value);
    if (isNew) this.#attributeCount++;
    return this;
  }

  setAttributes(attributes: SpanAttributes): this {
    for (const key in attributes) if (Object.hasOwn(attributes, key)) this.setAttribute(key, attributes[key]!);
    return this;
  }

  /** The span's own copy of its attributes, with those added since start. */
  #merge(): void {
    if (!this.#shared) return;
    const own: Record<string, AttributeValue> = Object.assign({}, this.#attributes) as Record<string, AttributeValue>;
    const added = this.#added;
    if (added !== undefined) for (let i = 0; i < added.length; i += 2) own[added[i] as string] = added[i + 1] as AttributeValue;
    this.#attributes = own;
    this.#added = undefined;
    this.#shared = false;
  }

  #truncate(value: AttributeValue): AttributeValue {
    const limit = this.tracer.limits.attributeValueLengthLimit;
    if (limit === Infinity) return value;
    const cut = (v: unknown): unknown => (typeof v === 'string' && v.length > limit ? v.substring(0, limit) : v);
    return (Array.isArray(value) ? value.map(cut) : cut(value)) as AttributeValue;
  }

  #now(): HrTime {
    return addHrTimes(this.startTime, millisToHrTime(performance.now() - this.#perfStart));
  }

  addEvent(name: string, attributesOrStartTime?: SpanAttributes | TimeInput, timeStamp?: TimeInput): this {
    if (this.#isEnded()) return this;
    const limits = this.tracer.limits;
    if (limits.eventCountLimit === 0) {
      diag.warn('No events allowed.');
      this.#droppedEvents++;
      return this;
    }
    if (this.#events === NO_EVENTS) this.#events = [];
    if (this.#events.length >= limits.eventCountLimit) {
      this.#events.shift();
      this.#droppedEvents++;
    }
    let attrs: SpanAttributes | undefined;
    if (isTimeInput(attributesOrStartTime)) {
      if (!isTimeInput(timeStamp)) timeStamp = attributesOrStartTime;
    } else attrs = attributesOrStartTime;
    const sanitized = sanitizeAttributes(attrs);
    const attributes: Attributes = {};
    let dropped = 0;
    let count = 0;
    for (const k in sanitized) {
      if (!Object.hasOwn(sanitized, k)) continue;
      if (count >= limits.attributePerEventCountLimit) {
        dropped++;
        continue;
      }
      attributes[k] = this.#truncate(sanitized[k]!);
      count++;
    }
    this.#events.push({ name, attributes, time: timeStamp === undefined ? this.#now() : timeInputToHrTime(timeStamp), droppedAttributesCount: dropped });
    return this;
  }

  /** A span started without links shares NO_LINKS until its first addLink, which gives it an array of its own. */
  get links(): Link[] {
    return this.#links;
  }

  addLink(link: Link): this {
    if (this.#isEnded()) return this;
    if (this.#links === NO_LINKS) this.#links = [];
    this.#links.push({ context: link.context, ...(link.attributes ? { attributes: sanitizeAttributes(link.attributes) } : {}) });
    return this;
  }

  addLinks(links: Link[]): this {
    for (const l of links) this.addLink(l);
    return this;
  }

  setStatus(status: SpanStatus): this {
    if (this.#isEnded()) return this;
    if (status.code === SpanStatusCode.UNSET) return this;
    if (this.#status?.code === SpanStatusCode.OK) return this;
    const next: SpanStatus = { code: status.code };
    if (status.code === SpanStatusCode.ERROR && typeof status.message === 'string') next.message = status.message;
    this.#status = next;
    return this;
  }

  updateName(name: string): this {
    if (!this.#isEnded()) this.name = name;
    return this;
  }

  recordException(exception: Exception, time?: TimeInput): void {
    const attributes: Attributes = {};
    if (typeof exception === 'string') attributes['exception.message'] = exception;
    else if (exception) {
      if (exception.code) attributes['exception.type'] = exception.code.toString();
      else if (exception.name) attributes['exception.type'] = exception.name;
      if (exception.message) attributes['exception.message'] = exception.message;
      if (exception.stack) attributes['exception.stacktrace'] = exception.stack;
    }
    if (attributes['exception.type'] || attributes['exception.message']) this.addEvent('exception', attributes, time);
    else diag.warn(`Failed to record an exception ${String(exception)}`);
  }

  end(endTime?: TimeInput): void {
    if (this.#durationMs >= 0) {
      diag.error(`${this.name} ${this._spanContext.traceId}-${this._spanContext.spanId} - You can only call end() on a span once.`);
      return;
    }
    if (endTime !== undefined || Number.isNaN(this.#perfStart)) {
      const end = endTime === undefined ? millisToHrTime(Date.now()) : timeInputToHrTime(endTime);
      const d = hrTimeDuration(this.startTime, end);
      this.#endTime = d[0] < 0 ? this.startTime.slice() as HrTime : end;
      this.#durationMs = d[0] < 0 ? 0 : d[0] * 1e3 + d[1] / 1e6;
    } else {
      this.#durationMs = Math.max(0, performance.now() - this.#perfStart);
    }
    this.tracer.ended(this);
  }

  // ReadableSpan: what exporters and the ring's readers see, worked out when read.

  get startTime(): HrTime {
    return (this.#startTime ??= millisToHrTime(this.#startMs));
  }

  get endTime(): HrTime {
    if (this.#durationMs < 0) return [0, 0];
    return (this.#endTime ??= addHrTimes(this.startTime, millisToHrTime(this.#durationMs)));
  }

  get duration(): HrTime {
    if (this.#durationMs < 0) return [-1, -1];
    return hrTimeDuration(this.startTime, this.endTime);
  }

  get status(): SpanStatus {
    return this.#status ?? { code: SpanStatusCode.UNSET };
  }

  get attributes(): Attributes {
    if (this.#added !== undefined) this.#merge();
    return this.#attributes;
  }

  get events(): TimedEvent[] {
    return this.#events;
  }

  get resource(): Resource {
    return this.tracer.resource;
  }

  get instrumentationScope(): InstrumentationScope {
    return this.tracer.instrumentationScope;
  }

  get droppedAttributesCount(): number {
    return this.#droppedAttributes;
  }

  get droppedEventsCount(): number {
    return this.#droppedEvents;
  }

  get droppedLinksCount(): number {
    return 0;
  }
}

const isTimeInput = (v: unknown): v is TimeInput => typeof v === 'number' || v instanceof Date || isTimeInputHrTime(v);

/** Processors whose onStart is known to do nothing: no Context is made for them. */
const quietOnStart = (p: SpanProcessor): boolean => p instanceof SpanRing || p instanceof BatchSpanProcessor || p instanceof SimpleSpanProcessor;

export interface ChassisTracerOptions {
  resource: Resource;
  scope: InstrumentationScope;
  sampler: Sampler;
  processors: SpanProcessor[];
  limits?: SpanLimits;
}

/**
 * An OpenTelemetry `Tracer` making ChassisSpans. Sampling: a ParentBasedSampler with its default delegates (the
 * chassis' `parentbased_*` samplers) follows the parent's `sampled` flag, and asks its root sampler only for a
 * new trace, which is what the SDK's ParentBasedSampler does, without a Context built to carry the parent to it.
 */
export class ChassisTracer implements Tracer {
  readonly resource: Resource;
  readonly instrumentationScope: InstrumentationScope;
  readonly limits: SpanLimits;
  readonly #processors: SpanProcessor[];
  /** Processors with an onStart that may do something (not the ring's, nor the SDK's exporting processors'). */
  readonly #onStart: SpanProcessor[];
  readonly #onEnding: SpanProcessor[];
  readonly #sampler: Sampler;
  readonly #root: Sampler | undefined;

  constructor(options: ChassisTracerOptions) {
    this.resource = options.resource;
    this.instrumentationScope = options.scope;
    this.limits = options.limits ?? spanLimitsFromEnv();
    this.#processors = options.processors;
    this.#onStart = options.processors.filter((p) => !quietOnStart(p));
    this.#onEnding = options.processors.filter((p) => typeof p.onEnding === 'function');
    this.#sampler = options.sampler;
    this.#root = parentBasedRoot(options.sampler);
  }

  startSpan(name: string, options: SpanOptions = {}, ctx: Context = otelContext.active()): Span {
    if (options.root) ctx = trace.deleteSpan(ctx);
    let parent = trace.getSpanContext(ctx);
    if (parent !== undefined && !trace.isSpanContextValid(parent)) parent = undefined;
    const links = options.links?.map((l) => ({ context: l.context, ...(l.attributes ? { attributes: sanitizeAttributes(l.attributes) } : {}) })) ?? [];
    return this.#start(name, options.kind ?? SpanKind.INTERNAL, sanitizeAttributes(options.attributes), false, parent, ctx, options.startTime, links);
  }

  /**
   * The chassis' own spans, the parent a span context at hand (no Context made to carry it), valid (its ids come
   * from the chassis: generated, or parsed from a `traceparent` that parseTraceparent checked). `trusted`:
   * `attributes` is frozen and valid (built once by the chassis and shared by every span of a route), so the span
   * keeps it as is and copies it only if an attribute is added; otherwise it is validated and copied, as startSpan does.
   */
  startChild(name: string, kind: SpanKind, attributes: Attributes | undefined, parent: SpanContext | undefined, trusted = false): Span {
    if (trusted) return this.#start(name, kind, attributes ?? EMPTY, true, parent, undefined, undefined, NO_LINKS);
    return this.#start(name, kind, sanitizeAttributes(attributes), false, parent, undefined, undefined, []);
  }

  #start(
    name: string,
    kind: SpanKind,
    attributes: Attributes,
    shared: boolean,
    parent: SpanContext | undefined,
    ctx: Context | undefined,
    startTime: TimeInput | undefined,
    links: Link[],
  ): Span {
    const valid = parent !== undefined;
    const traceId = valid ? parent.traceId : randomHex(16);
    const spanId = randomHex(8);
    let sampled: boolean;
    let traceState = valid ? parent.traceState : undefined;
    if (this.#root !== undefined && valid) {
      sampled = (parent.traceFlags & 1) === 1;
      if (!sampled) return trace.wrapSpanContext({ traceId, spanId, traceFlags: 0, traceState });
    } else {
      const sampler = this.#root ?? this.#sampler;
      const result = sampler.shouldSample(ctx ?? ROOT_CONTEXT, traceId, name, kind, attributes, links);
      if (result.traceState) traceState = result.traceState;
      if (result.attributes) {
        attributes = { ...attributes, ...sanitizeAttributes(result.attributes) };
        shared = false;
      }
      if (result.decision === SamplingDecision.NOT_RECORD) return trace.wrapSpanContext({ traceId, spanId, traceFlags: 0, ...(traceState ? { traceState } : {}) });
      sampled = result.decision === SamplingDecision.RECORD_AND_SAMPLED;
    }
    const spanContext: SpanContext = { traceId, spanId, traceFlags: sampled ? 1 : 0, traceState };
    const span = new ChassisSpan(this, spanContext, name, kind, parent, attributes, shared, startTime, links);
    if (this.#onStart.length > 0) {
      const parentContext = ctx ?? (valid ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT);
      for (const p of this.#onStart) p.onStart(span as never, parentContext);
    }
    return span;
  }

  /** Called by a span's end(): hands it to the processors. */
  ended(span: ChassisSpan): void {
    for (const p of this.#onEnding) p.onEnding!(span as never);
    const ps = this.#processors;
    for (let i = 0; i < ps.length; i++) ps[i]!.onEnd(span);
  }

  startActiveSpan<F extends (span: Span) => unknown>(name: string, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, ctx: Context, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, a2: F | SpanOptions, a3?: F | Context, a4?: F): ReturnType<F> | undefined {
    let options: SpanOptions | undefined;
    let ctx: Context | undefined;
    let fn: F;
    if (typeof a2 === 'function') fn = a2;
    else if (typeof a3 === 'function') {
      options = a2;
      fn = a3 as F;
    } else if (a4 !== undefined) {
      options = a2;
      ctx = a3 as Context;
      fn = a4;
    } else return undefined;
    const parentContext = ctx ?? otelContext.active();
    const span = this.startSpan(name, options, parentContext);
    return otelContext.with(trace.setSpan(parentContext, span), fn as (span: Span) => ReturnType<F>, undefined, span);
  }

  forceFlush(): Promise<void> {
    return Promise.all(this.#processors.map((p) => p.forceFlush())).then(() => undefined);
  }

  shutdown(): Promise<void> {
    return Promise.all(this.#processors.map((p) => p.shutdown())).then(() => undefined);
  }
}

/**
 * The root sampler of a ParentBasedSampler left with its default delegates (parent sampled → record, not sampled
 * → drop, remote or local), or undefined for any other sampler (asked for every span, as the SDK does).
 */
function parentBasedRoot(sampler: Sampler): Sampler | undefined {
  if (!(sampler instanceof ParentBasedSampler)) return undefined;
  const s = sampler as unknown as Record<string, unknown>;
  const defaults = ['_remoteParentSampled', '_remoteParentNotSampled', '_localParentSampled', '_localParentNotSampled'].every((k) =>
    k.endsWith('NotSampled') ? s[k] instanceof AlwaysOffSampler : s[k] instanceof AlwaysOnSampler,
  );
  return defaults ? (s['_root'] as Sampler) : undefined;
}
