import { context, ROOT_CONTEXT, trace, type Context, type ContextManager } from '@opentelemetry/api';
import type { WorkContext } from './context.ts';
import { childWork } from './spans.ts';
import { workStorage } from './work.ts';

/**
 * OpenTelemetry's active context, kept in the chassis' own work context instead of a second AsyncLocalStorage:
 * `trace.getActiveSpan()` from `@opentelemetry/api` returns the span of the request or event being handled, and a
 * span made active with `context.with` (or a tracer's `startActiveSpan`) becomes the parent of the chassis' spans
 * (outgoing calls, queries, events) and the span id in log lines. Only the span travels: other context values set
 * with `context.with` are not kept.
 */
export class WorkContextManager implements ContextManager {
  active(): Context {
    const span = workStorage.getStore()?.span;
    return span ? trace.setSpan(ROOT_CONTEXT, span) : ROOT_CONTEXT;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    const work = workStorage.getStore();
    const span = trace.getSpan(ctx);
    const call = () => fn.call(thisArg, ...args) as ReturnType<F>;
    if (!work || !span || span === work.span) return call();
    let next: WorkContext;
    if (span.isRecording()) next = childWork(work, span);
    else {
      const sc = span.spanContext();
      const { span: _span, ...rest } = work;
      next = { ...rest, traceId: sc.traceId, spanId: sc.spanId, sampled: (sc.traceFlags & 1) === 1 };
    }
    return workStorage.run(next, call);
  }

  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const fn = target as unknown as (...args: unknown[]) => unknown;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const manager = this;
    return function (this: unknown, ...args: unknown[]) {
      return manager.with(ctx, fn, this, ...args);
    } as unknown as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    return this;
  }
}

let registered = false;

/** Makes the work context OpenTelemetry's global context manager (once per process; false if another one is). */
export function registerWorkContextManager(): boolean {
  if (registered) return true;
  registered = context.setGlobalContextManager(new WorkContextManager());
  return registered;
}
