// The span hooks the chassis calls from its HTTP server and client, database, outbox, relay and inbox. Each checks
// first whether there is anything to record, so with tracing off (or a trace not sampled) a hook costs a
// property read. Span names and attributes follow the OpenTelemetry semantic conventions where they fit.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { WorkContext } from './context.ts';
import { newRequestId, randomHex } from './ids.ts';
import { formatTraceparent, parseTraceparent } from './traceparent.ts';
import { ChassisTracer } from './tracer.ts';
import { workStorage } from './work.ts';

export { SpanKind };

/** W3C trace context as it travels in headers and event envelopes. */
export interface TraceCarrier {
  traceparent?: string | undefined;
  tracestate?: string | undefined;
}

/** The context of a remote parent (a caller's `traceparent`, an event envelope's), or the root context. */
export function remoteParent(traceparent: string | undefined, tracestate: string | undefined): Context {
  const parent = parseTraceparent(traceparent);
  if (!parent) return ROOT_CONTEXT;
  const spanContext: SpanContext = { traceId: parent.traceId, spanId: parent.spanId, traceFlags: parent.sampled ? 1 : 0, isRemote: true };
  if (tracestate) spanContext.traceState = new TraceState(tracestate);
  return trace.setSpanContext(ROOT_CONTEXT, spanContext);
}

/** `traceparent` naming `span` as the parent. */
export function traceparentOf(span: Span): string {
  const sc = span.spanContext();
  return formatTraceparent({ traceId: sc.traceId, spanId: sc.spanId, sampled: (sc.traceFlags & 1) === 1 });
}

/**
 * A span child of `parent` (or a root): the chassis tracer's direct path, else the generic OpenTelemetry call.
 * `trusted`: the attributes are frozen and valid, shared by many spans (see ChassisTracer.startChild).
 */
export function spanUnder(tracer: Tracer, name: string, kind: SpanKind, attributes: Attributes | undefined, parent: SpanContext | undefined, trusted = false): Span {
  if (tracer instanceof ChassisTracer) return tracer.startChild(name, kind, attributes, parent, trusted);
  return tracer.startSpan(name, { kind, attributes }, parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT);
}

/**
 * A unit of work (an incoming request, an event delivery) with a span of its own, continuing the remote parent's
 * trace or starting one. The sampler decides: a span it drops is not kept (the work carries its ids on, with the
 * `sampled` flag off, so the callees drop theirs too).
 */
export function startWork(
  tracer: Tracer,
  name: string,
  kind: SpanKind,
  traceparent: string | undefined,
  tracestate: string | undefined,
  requestId: string | undefined,
  deadline: number | undefined,
  attributes?: Attributes,
): WorkContext {
  const parent = remoteParent(traceparent, tracestate);
  const span = tracer.startSpan(name, { kind, attributes }, parent);
  const sc = span.spanContext();
  const work: WorkContext = { requestId: requestId ?? newRequestId(), traceId: sc.traceId, spanId: sc.spanId, sampled: (sc.traceFlags & 1) === 1 };
  const parentSpanId = trace.getSpanContext(parent)?.spanId;
  if (parentSpanId !== undefined) work.parentSpanId = parentSpanId;
  if (tracestate) work.tracestate = tracestate;
  if (deadline !== undefined) work.deadline = deadline;
  if (span.isRecording()) {
    work.span = span;
    work.tracer = tracer;
  }
  return work;
}

/**
 * Gives an existing work context (an incoming request's, made by the server's first hook, maybe already carrying
 * what other hooks recorded, e.g. the customer) a span of its own, child of the remote parent it names, and makes
 * that span the work's: its ids become the work's trace and span ids. The sampler decides, as in startWork().
 */
export function traceWork(work: WorkContext, tracer: Tracer, name: string, kind: SpanKind, attributes?: Attributes, trusted = false): void {
  let parent: SpanContext | undefined;
  if (work.parentSpanId !== undefined) {
    parent = { traceId: work.traceId, spanId: work.parentSpanId, traceFlags: work.sampled ? 1 : 0, isRemote: true };
    if (work.tracestate) parent.traceState = new TraceState(work.tracestate);
  }
  const span = spanUnder(tracer, name, kind, attributes, parent, trusted);
  const sc = span.spanContext();
  work.traceId = sc.traceId;
  work.spanId = sc.spanId;
  work.sampled = (sc.traceFlags & 1) === 1;
  if (span.isRecording()) {
    work.span = span;
    work.tracer = tracer;
  }
}

/** A child span of the work's span, or undefined when the work's span is not recorded. */
export function startChild(work: WorkContext | undefined, name: string, kind: SpanKind, attributes?: Attributes): Span | undefined {
  const parent = work?.span;
  if (parent === undefined) return undefined;
  return spanUnder(work!.tracer!, name, kind, attributes, parent.spanContext());
}

/** The work continued under `span` (a transaction's, a span a service starts): logs and children follow it. */
export function childWork(work: WorkContext, span: Span): WorkContext {
  return { ...work, span, spanId: span.spanContext().spanId, parentSpanId: work.spanId };
}

/** Runs `fn` with `span` as the active span of the current work. */
export function runInSpan<A extends unknown[], R>(work: WorkContext, span: Span, fn: (...args: A) => R, ...args: A): R {
  return workStorage.run(childWork(work, span), fn, ...args);
}

/** Marks the span failed: error status with the error's message, and an `exception` event (type, message, stack). */
export function failSpan(span: Span, err: unknown): void {
  if (err instanceof Error) {
    span.recordException(err);
    span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
  } else {
    span.recordException(String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: String(err) });
  }
}

/** Ends a server span with the response status: a 5xx is an error (a 4xx is the caller's, not this server's). */
export function endServerSpan(span: Span, status: number): void {
  if (!span.isRecording()) return;
  span.setAttribute('http.response.status_code', status);
  // failSpan may have set the error (with its message) already.
  if (status >= 500 && (span as Partial<ReadableSpan>).status?.code !== SpanStatusCode.ERROR) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

/** Ends a span as failed, or as fine. */
export function endSpan(span: Span, err?: unknown): void {
  if (err !== undefined) failSpan(span, err);
  span.end();
}

/**
 * The `traceparent` of a call made outside any request or delivery (a background loop, e.g. the market's matcher
 * asking for prices every round): a trace of its own, not sampled, so the callee records nothing. Otherwise every
 * round would start a sampled trace at the callee and crowd the order traces out of its ring (and the backend).
 * Work that wants a trace runs under a span of its own (OpenTelemetry's `context.with`).
 */
export function detachedTraceparent(): string {
  const ids = randomHex(24);
  return `00-${ids.slice(0, 32)}-${ids.slice(32)}-00`;
}
