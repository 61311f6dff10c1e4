import { isProblemError, isUpstreamError, ProblemError, type Logger, type UpstreamError } from '@simplebank/chassis';

/**
 * How a failed call to an internal service looks to a public client. One place, so every route answers alike:
 *
 * - the service said no (400, 404, 409, 422): the client's problem; passed through with the service's `code`,
 *   `detail` and field `errors`, so `insufficient_funds` or `order_final` reach the client as such;
 * - the service timed out (or its deadline passed): 504 `upstream_timeout`;
 * - it could not be reached, shed load (503, 429), or our own resilience pipeline refused to call it (circuit
 *   open, bulkhead full): 503 `upstream_unavailable` with Retry-After (the service's, or the circuit's time to its
 *   probe, at least 1 s), since trying again shortly may well work;
 * - it failed (other 5xx), broke its contract, or refused our service credential (401/403 from a service is our
 *   misconfiguration, not the caller's fault): 502 `bad_gateway`.
 *
 * Which service failed is logged, not told: the public API does not reveal the topology behind it.
 */
const CLIENT_ERRORS = new Set([400, 404, 409, 422]);

export interface MapOptions {
  /** Further upstream statuses that are the caller's concern on this route (e.g. 401 from logging in). */
  passThrough?: number[];
}

export function toPublicProblem(err: UpstreamError, options: MapOptions = {}): ProblemError {
  const { status, problem } = err;
  if (err.kind === 'http' && status !== undefined && (CLIENT_ERRORS.has(status) || options.passThrough?.includes(status))) {
    return new ProblemError(status, problem?.code ?? err.code, problem?.detail, problem?.errors ? { errors: problem.errors } : {});
  }
  if (err.kind === 'timeout' || status === 504) {
    return new ProblemError(504, 'upstream_timeout', 'a service needed for this request did not answer in time');
  }
  if (err.kind === 'connection' || err.kind === 'rejected' || status === 503 || status === 429) {
    const seconds = Math.min(3600, Math.max(1, Math.ceil((err.retryAfterMs ?? 1000) / 1000)));
    return new ProblemError(503, 'upstream_unavailable', 'a service needed for this request is unavailable; try again shortly', {}, { 'retry-after': String(seconds) });
  }
  return new ProblemError(502, 'bad_gateway', 'a service needed for this request failed');
}

/**
 * Runs one upstream call, turning its failure into the public problem above. Problems thrown on purpose pass
 * unchanged; anything else (a bug) stays a 500.
 */
export async function upstream<T>(log: Logger, call: () => Promise<T>, options?: MapOptions): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (isProblemError(err) || !isUpstreamError(err)) throw err;
    const mapped = toPublicProblem(err, options);
    if (mapped.status >= 500) {
      log.warn({ service: err.service, operation: err.operation, kind: err.kind, status: err.status, code: err.code, answered: mapped.status }, 'upstream call failed');
    }
    throw mapped;
  }
}
