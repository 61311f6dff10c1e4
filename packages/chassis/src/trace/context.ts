import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { formatTraceparent, newSpanId, newTraceId, parseTraceparent } from './traceparent.ts';

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
}

const storage = new AsyncLocalStorage<WorkContext>();

export function currentContext(): WorkContext | undefined {
  return storage.getStore();
}

export function runWithContext<T>(ctx: WorkContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

/** A new context continuing the trace of an incoming `traceparent` (or starting a new trace). */
export function contextFrom(input: { traceparent?: string; tracestate?: string; requestId?: string; deadline?: number }): WorkContext {
  const parent = parseTraceparent(input.traceparent);
  return {
    requestId: input.requestId ?? randomUUID(),
    traceId: parent?.traceId ?? newTraceId(),
    spanId: newSpanId(),
    ...(parent ? { parentSpanId: parent.spanId } : {}),
    sampled: parent?.sampled ?? true,
    ...(input.tracestate ? { tracestate: input.tracestate } : {}),
    ...(input.deadline !== undefined ? { deadline: input.deadline } : {}),
  };
}

/** The `traceparent` to send downstream from the current context, naming the current span as parent. */
export function outgoingTraceparent(ctx: WorkContext | undefined = currentContext()): string | undefined {
  if (!ctx) return undefined;
  return formatTraceparent({ traceId: ctx.traceId, spanId: ctx.spanId, sampled: ctx.sampled });
}
