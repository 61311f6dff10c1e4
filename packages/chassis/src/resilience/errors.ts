import { isUpstreamError, parseRetryAfter, UpstreamError, type RejectionCode } from '../client/errors.ts';

export { parseRetryAfter, type RejectionCode };

/**
 * A call the pipeline refused before it reached the network (circuit open, bulkhead full): an `UpstreamError` of
 * kind `rejected`, so problem mapping, logging and fallbacks treat it like any other failed dependency call.
 * Callers branch on `kind === 'rejected'` and `code`.
 */
export class UpstreamRejectedError extends UpstreamError {
  declare readonly kind: 'rejected';
  declare readonly code: RejectionCode;
  /** The dependency's resilience pipeline that refused (usually equal to `service`). */
  readonly dependency: string;

  constructor(init: { code: RejectionCode; service: string; operation: string; dependency: string; message: string; retryAfterMs?: number; cause?: unknown }) {
    super({
      kind: 'rejected',
      code: init.code,
      service: init.service,
      operation: init.operation,
      message: init.message,
      ...(init.retryAfterMs !== undefined ? { retryAfterMs: init.retryAfterMs } : {}),
      ...(init.cause !== undefined ? { cause: init.cause } : {}),
    });
    this.dependency = init.dependency;
  }
}

export const isRejectedError = (err: unknown): err is UpstreamRejectedError =>
  isUpstreamError(err) && (err as { kind?: unknown }).kind === 'rejected';

/** What the policies read from a failed call; duck-typed so errors from either errors.ts or this folder fit. */
export interface UpstreamView {
  kind: string;
  status?: number;
  code?: string;
}

export function upstreamView(err: unknown): UpstreamView | undefined {
  if (!isUpstreamError(err)) return undefined;
  const e = err as unknown as Partial<UpstreamView>;
  return typeof e.kind === 'string' ? (e as UpstreamView) : undefined;
}

/**
 * The server's `Retry-After` for a failed call, in ms: `UpstreamError.retryAfterMs` (client.ts fills it from the
 * header of a 429/503), else a `retry-after` in `headers`, or a `retryAfter` (seconds) / `retryAfterMs`
 * extension in the problem body (errors made by other code).
 */
export function retryAfterMsOf(err: unknown, now: number = Date.now()): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { retryAfterMs?: unknown; headers?: Record<string, unknown>; problem?: Record<string, unknown> };
  if (typeof e.retryAfterMs === 'number' && Number.isFinite(e.retryAfterMs) && e.retryAfterMs >= 0) return e.retryAfterMs;
  const header = e.headers?.['retry-after'];
  if (header !== undefined) {
    const ms = parseRetryAfter(Array.isArray(header) ? header[0] : header, now);
    if (ms !== undefined) return ms;
  }
  const p = e.problem;
  if (p && typeof p.retryAfterMs === 'number' && p.retryAfterMs >= 0) return p.retryAfterMs;
  if (p && p.retryAfter !== undefined) return parseRetryAfter(p.retryAfter, now);
  return undefined;
}
