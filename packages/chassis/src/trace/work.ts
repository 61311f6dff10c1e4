// Internals of the work context, shared by context.ts (the public API) and the HTTP server; not exported by the package.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { WorkContext } from './context.ts';
import { newRequestId, randomHex } from './ids.ts';
import { parseTraceparent } from './traceparent.ts';

/** The one store behind currentContext() and runWithContext(). */
export const workStorage = new AsyncLocalStorage<WorkContext>();

/**
 * contextFrom() without the options object: the server calls it once per request. Optional fields are added
 * only when present (a context never carries `deadline: undefined`).
 */
export function createWorkContext(traceparent: string | undefined, tracestate: string | undefined, requestId: string | undefined, deadline: number | undefined): WorkContext {
  const parent = parseTraceparent(traceparent);
  let ctx: WorkContext;
  if (parent) {
    ctx = { requestId: requestId ?? newRequestId(), traceId: parent.traceId, spanId: randomHex(8), parentSpanId: parent.spanId, sampled: parent.sampled };
  } else {
    // A new trace: trace id and span id from one draw (the same bytes two draws would have given).
    const ids = randomHex(24);
    ctx = { requestId: requestId ?? newRequestId(), traceId: ids.slice(0, 32), spanId: ids.slice(32), sampled: true };
  }
  if (tracestate) ctx.tracestate = tracestate;
  if (deadline !== undefined) ctx.deadline = deadline;
  return ctx;
}
