import { z } from 'zod';
import { isProblemError } from '../errors/problem.ts';

/**
 * Batch routes: one call that carries many items of one operation (the saga's reservations, settlements or fee
 * charges of a burst), each answered as a call of its own would have been. A refusal of one item (4xx) is that
 * item's answer and leaves the others alone; anything else fails the whole call, and the caller makes the items
 * again one by one (client/batched-calls.ts). Every item of a batch route must be idempotent on its own, since a
 * failed batch call may have done part of its work.
 */

/** What a refused item carries: the code and detail of the problem its own call would have answered. */
export const BatchItemProblem = z.object({ code: z.string(), detail: z.string().optional() });

/** One item's answer in a batch response: its success status and body, or its 4xx status and problem. */
export function batchOutcome<S extends z.ZodType>(success: S) {
  return z.union([
    z.object({ status: z.number().int().min(200).max(299), body: success }),
    z.object({ status: z.number().int().min(400).max(499), problem: BatchItemProblem }),
  ]);
}

export type BatchOutcome<T> = { status: number; body: T } | { status: number; problem: z.infer<typeof BatchItemProblem> };

/**
 * Server side: an item's handler result as its outcome, or its refusal (a 4xx ProblemError) as a problem outcome.
 * Anything else is rethrown: the batch call fails as a whole, and the caller makes each item again alone.
 */
export function answerItem<T>(work: Promise<{ status: number; body: T }>): Promise<BatchOutcome<T>> {
  return work.then(
    ({ status, body }) => ({ status, body }),
    (err: unknown) => {
      if (isProblemError(err) && err.status >= 400 && err.status < 500) return { status: err.status, problem: { code: err.code, detail: err.message } };
      throw err;
    },
  );
}
