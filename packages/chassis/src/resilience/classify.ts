import { upstreamView } from './errors.ts';

/** Statuses that mean "the dependency (or a proxy in front of it) could not handle this right now". */
const RETRYABLE_STATUSES = new Set([429, 502, 503, 504]);

/**
 * Worth another attempt: the request did not reach a healthy server (connection), we gave up waiting (timeout),
 * or the server said "not now" (429/502/503/504). A 500 is not retried: it usually repeats, and the server may
 * have done part of the work. Rejections (open circuit, full bulkhead) are not retried: retrying them at once
 * is exactly the load they exist to shed.
 */
export function isRetryableFailure(err: unknown): boolean {
  const e = upstreamView(err);
  if (!e) return false;
  if (e.kind === 'connection' || e.kind === 'timeout') return true;
  return e.kind === 'http' && e.status !== undefined && RETRYABLE_STATUSES.has(e.status);
}

/**
 * Counts against the circuit breaker: signs the dependency is unhealthy (unreachable, slow, 5xx). A 4xx (incl.
 * 429) or a contract-breaking body means the dependency answered, so it counts as a success for the failure
 * rate. Errors that are not from a dependency call (bugs) are not the dependency's fault either.
 */
export function isBreakerFailure(err: unknown): boolean {
  const e = upstreamView(err);
  if (!e) return false;
  if (e.kind === 'connection' || e.kind === 'timeout') return true;
  return e.kind === 'http' && e.status !== undefined && e.status >= 500;
}
