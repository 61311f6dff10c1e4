import type { BatchOutcome } from '../contract/batch.ts';
import { createBatcher, type BatchLimits } from '../data/group-commit.ts';
import { UpstreamError } from './errors.ts';

export interface BatchedCallsOptions<I, T> {
  /** The service and operation a refused item's UpstreamError names (as a lone call's would). */
  service: string;
  operation: string;
  /** Items in one batch call, at most, and batch calls in flight at once. */
  limits: BatchLimits;
  /** The batch route: one outcome per item, in order (contract/batch.ts). */
  batch(items: I[]): Promise<BatchOutcome<T>[]>;
  /** The single route, for an item made alone: one that arrives on its own, or each item of a batch call that failed. */
  alone(item: I): Promise<T>;
}

/**
 * Calls made together go as one call of a batch route: those made in one turn of the event loop, or while
 * `limits.transactions` batch calls are in flight (chassis createBatcher). One request for a burst instead of one
 * per item: each request costs both services more CPU than the work it carries. A batch call that fails as a whole
 * (the service down, a timeout) has already been retried by the client's pipeline; its items are then made again
 * one by one through `alone`, so every caller gets the outcome its own call would have had. A refused item rejects
 * its own caller with the UpstreamError a lone call would have thrown (kind `http`, its status and code).
 */
export function batchedCalls<I, T>(options: BatchedCallsOptions<I, T>): (item: I) => Promise<T> {
  const { service, operation } = options;
  const call = createBatcher<I, BatchOutcome<T>>({
    limits: options.limits,
    batch: async (items) => {
      const outcomes = await options.batch(items);
      // A batch answered for other items than it was sent: none of it can be trusted, so each goes again alone.
      if (outcomes.length !== items.length) throw new Error(`${service}.${operation}: ${outcomes.length} outcomes for ${items.length} items`);
      return outcomes;
    },
    alone: async (item) => ({ status: 200, body: await options.alone(item) }),
  });
  return async (item) => {
    const outcome = await call(item);
    if ('body' in outcome) return outcome.body;
    const { status, problem } = outcome;
    throw new UpstreamError({
      kind: 'http',
      service,
      operation,
      status,
      code: problem.code,
      message: `${service}.${operation} answered ${status}: ${problem.detail ?? problem.code}`,
    });
  };
}
