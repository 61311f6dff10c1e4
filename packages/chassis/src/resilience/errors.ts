import { isUpstreamError } from '../client/errors.ts';

/** Why a resilience policy refused to make a call at all. */
export type RejectionCode = 'circuit_open' | 'bulkhead_full';

/**
 * A call the pipeline refused before it reached the network (circuit open, bulkhead full).
 *
 * It is shaped like `UpstreamError` (`name`, `kind`, `code`, `service`, `operation`) so `isUpstreamError`,
 * problem mapping and logging treat it like any other failed dependency call, without this folder editing
 * client/errors.ts. Callers branch on `kind === 'rejected'` and `code`.
 */
export class UpstreamRejectedError extends Error {
  readonly kind = 'rejected' as const;
  readonly code: RejectionCode;
  readonly service: string;
  readonly operation: string;
  /** The dependency's resilience pipeline that refused (usually equal to `service`). */
  readonly dependency: string;
  /** When retrying could make sense again (e.g. the breaker's half-open time), if known. */
  readonly retryAfterMs?: number;

  constructor(init: { code: RejectionCode; service: string; operation: string; dependency: string; message: string; retryAfterMs?: number; cause?: unknown }) {
    super(init.message, init.cause !== undefined ? { cause: init.cause } : undefined);
    // Same name as UpstreamError on purpose: `isUpstreamError` (a name check) recognises it.
    this.name = 'UpstreamError';
    this.code = init.code;
    this.service = init.service;
    this.operation = init.operation;
    this.dependency = init.dependency;
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
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
 * `Retry-After` as milliseconds: delta-seconds ("120") or an HTTP-date; undefined when absent or unparsable.
 * Exported so client.ts can fill `UpstreamError.retryAfterMs` from the response header.
 */
export function parseRetryAfter(value: unknown, now: number = Date.now()): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The server's `Retry-After` for a failed call, in ms. UpstreamError does not carry it yet, so look where it can
 * be: a `retryAfterMs` property (what the lead is asked to add), a `retry-after` in `headers`, or a
 * `retryAfter` (seconds) / `retryAfterMs` extension in the problem body.
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
