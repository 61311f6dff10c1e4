import type { Problem } from '../errors/problem.ts';

/**
 * A call to another service that did not produce a declared success response.
 * `kind` tells what went wrong; `status`/`problem` are set when the service answered.
 */
export class UpstreamError extends Error {
  readonly kind: 'http' | 'timeout' | 'connection' | 'invalid_response';
  readonly service: string;
  readonly operation: string;
  readonly status?: number;
  readonly problem?: Problem;
  readonly code: string;

  constructor(init: { kind: UpstreamError['kind']; service: string; operation: string; status?: number; problem?: Problem; message: string; cause?: unknown }) {
    super(init.message, init.cause !== undefined ? { cause: init.cause } : undefined);
    this.name = 'UpstreamError';
    this.kind = init.kind;
    this.service = init.service;
    this.operation = init.operation;
    if (init.status !== undefined) this.status = init.status;
    if (init.problem !== undefined) this.problem = init.problem;
    this.code = init.problem?.code ?? init.kind;
  }
}

export const isUpstreamError = (err: unknown): err is UpstreamError => err instanceof Error && err.name === 'UpstreamError';
