import { SpanKind, type Attributes, type Span } from '@opentelemetry/api';
import { isUpstreamError } from '../client/errors.ts';
import type { WorkContext } from './context.ts';
import { failSpan, spanUnder, traceparentOf } from './spans.ts';

/** What a client span needs of a contract route (client.ts's RouteCall). */
interface RouteRef {
  service: string;
  operation: string;
  def: { method: string; path: string };
}

/** Name and attributes of each route's spans, worked out at its first traced call. */
const described = new WeakMap<RouteRef, { name: string; attributes: Attributes }>();

function describe(route: RouteRef): { name: string; attributes: Attributes } {
  let d = described.get(route);
  if (d === undefined) {
    d = {
      name: `${route.service}.${route.operation}`,
      attributes: Object.freeze({ 'peer.service': route.service, 'rpc.method': route.operation, 'http.request.method': route.def.method, 'url.template': route.def.path }),
    };
    described.set(route, d);
  }
  return d;
}

/**
 * The client span of one logical call to another service (`accounts.reserve`), retries included. Its context is
 * the `traceparent` of the first attempt; a retry gets a span of its own (`accounts.reserve #2`, child of the
 * call's), whose context its request carries, so each attempt's server span hangs under the attempt that made it.
 */
export class ClientCallSpan {
  attempts = 0;

  private constructor(
    readonly work: WorkContext,
    readonly span: Span,
    readonly name: string,
  ) {}

  /** A span for the call when the current work is recorded, else undefined (nothing to do, nothing made). */
  static start(work: WorkContext | undefined, route: RouteRef): ClientCallSpan | undefined {
    const parent = work?.span;
    if (parent === undefined) return undefined;
    const { name, attributes } = describe(route);
    const span = spanUnder(work!.tracer!, name, SpanKind.CLIENT, attributes, parent.spanContext(), true);
    return new ClientCallSpan(work!, span, name);
  }

  get traceparent(): string {
    return traceparentOf(this.span);
  }

  /**
   * An attempt starts: the first goes out under the call's span; a retry gets its own span, put in `headers`.
   * Returns the retry's span, which the caller ends with end() when that attempt settles.
   */
  attempt(headers: Record<string, string>, traceparentHeader: string): Span | undefined {
    this.attempts++;
    if (this.attempts === 1) return undefined;
    const resends = this.attempts - 1;
    const span = spanUnder(this.work.tracer!, `${this.name} #${this.attempts}`, SpanKind.CLIENT, { 'http.request.resend_count': resends }, this.span.spanContext(), true);
    headers[traceparentHeader] = traceparentOf(span);
    return span;
  }

  /**
   * Ends `span` (the call's, or a retry's) as its call or attempt ended: with the response's status code, or as
   * failed with `err`. Not a promise wrapper: client.ts calls it from the one reaction it has on the outcome.
   */
  end(span: Span, status: number | undefined, failed: boolean, err: unknown): void {
    if (span === this.span && this.attempts > 1) span.setAttribute('simplebank.attempts', this.attempts);
    if (!failed) span.setAttribute('http.response.status_code', status!);
    else {
      if (isUpstreamError(err)) {
        if (err.status !== undefined) span.setAttribute('http.response.status_code', err.status);
        span.setAttribute('error.type', err.code);
      }
      failSpan(span, err);
    }
    span.end();
  }
}
