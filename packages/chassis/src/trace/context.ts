import type { Span, Tracer } from '@opentelemetry/api';
import { formatTraceparent } from './traceparent.ts';
import { createWorkContext, workStorage } from './work.ts';

/**
 * What follows one unit of work (an HTTP request or an event delivery) through async calls:
 * ids for logs and the trace position that outgoing calls and published events carry on.
 */
export interface WorkContext {
  requestId: string;
  traceId: string;
  /** This unit of work's own span; children name it as their parent. */
  spanId: string;
  parentSpanId?: string;
  sampled: boolean;
  tracestate?: string;
  /** Absolute deadline (epoch ms) for the whole operation, if the caller set one. */
  deadline?: number;
  /** The customer on whose behalf the work runs, if known (logged as an id, never as personal data). */
  customerId?: string;
  /**
   * The OpenTelemetry span `spanId` names, while it is being recorded (absent when tracing is off or the trace is
   * not sampled: then no child span is made either), and the tracer of the service that started it.
   */
  span?: Span;
  tracer?: Tracer;
}

export function currentContext(): WorkContext | undefined {
  return workStorage.getStore();
}

export function runWithContext<T>(ctx: WorkContext, fn: () => T): T {
  return workStorage.run(ctx, fn);
}

/** A new context continuing the trace of an incoming `traceparent` (or starting a new trace). */
export function contextFrom(input: { traceparent?: string; tracestate?: string; requestId?: string; deadline?: number }): WorkContext {
  return createWorkContext(input.traceparent, input.tracestate, input.requestId, input.deadline);
}

/** The `traceparent` to send downstream from the current context, naming the current span as parent. */
export function outgoingTraceparent(ctx: WorkContext | undefined = currentContext()): string | undefined {
  if (!ctx) return undefined;
  return formatTraceparent({ traceId: ctx.traceId, spanId: ctx.spanId, sampled: ctx.sampled });
}
