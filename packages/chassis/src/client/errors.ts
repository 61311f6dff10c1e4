import type { Problem } from '../errors/problem.ts';

/**
 * What went wrong with a call to another service:
 * - `http`: it answered with a status its contract does not declare as success (`status`, `problem` set);
 * - `timeout`: no answer within the attempt's timeout or the caller's deadline;
 * - `connection`: it could not be reached, or the connection failed mid-call;
 * - `invalid_response`: it answered a declared status with a body that breaks its contract;
 * - `rejected`: our own resilience pipeline refused to make the call (circuit open, bulkhead full); `code`
 *   says which (`RejectionCode`).
 */
export type UpstreamErrorKind = 'http' | 'timeout' | 'connection' | 'invalid_response' | 'rejected';

/** Why the pipeline refused a call without sending it. */
export type RejectionCode = 'circuit_open' | 'bulkhead_full';

export interface UpstreamErrorInit {
  kind: UpstreamErrorKind;
  service: string;
  operation: string;
  status?: number;
  problem?: Problem;
  /** Default: the problem's code, else the kind. */
  code?: string;
  /** When trying again may make sense: the server's `Retry-After`, or an open circuit's time to its probe. */
  retryAfterMs?: number;
  message: string;
  cause?: unknown;
}

/**
 * A call to another service that did not produce a declared success response.
 * `kind` tells what went wrong; `status`/`problem` are set when the service answered.
 */
export class UpstreamError extends Error {
  readonly kind: UpstreamErrorKind;
  readonly service: string;
  readonly operation: string;
  readonly status?: number;
  readonly problem?: Problem;
  readonly code: string;
  /** From a 429/503 answer's `Retry-After`, or an open circuit's time until its probe; the retry policy honours it. */
  readonly retryAfterMs?: number;

  constructor(init: UpstreamErrorInit) {
    super(init.message, init.cause !== undefined ? { cause: init.cause } : undefined);
    this.name = 'UpstreamError';
    this.kind = init.kind;
    this.service = init.service;
    this.operation = init.operation;
    if (init.status !== undefined) this.status = init.status;
    if (init.problem !== undefined) this.problem = init.problem;
    this.code = init.code ?? init.problem?.code ?? init.kind;
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
  }
}

/** By name, not `instanceof`: the check survives two copies of the chassis being loaded. */
export const isUpstreamError = (err: unknown): err is UpstreamError => err instanceof Error && err.name === 'UpstreamError';

/**
 * `Retry-After` as milliseconds: delta-seconds ("120") or an HTTP-date; undefined when absent or unparsable.
 * client.ts fills `UpstreamError.retryAfterMs` with it.
 */
export function parseRetryAfter(value: unknown, now: number = Date.now()): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
