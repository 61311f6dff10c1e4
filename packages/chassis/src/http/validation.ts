import type { z } from 'zod';
import { problems } from '../errors/problem.ts';

/** Parses one part of the input; on failure throws a 400 problem naming each offending field. */
export function parsePart<S extends z.ZodType>(schema: S | undefined, value: unknown, part: 'params' | 'query' | 'body' | 'headers'): z.infer<S> | undefined {
  if (!schema) return undefined;
  const result = schema.safeParse(value ?? (part === 'body' ? undefined : {}));
  if (result.success) return result.data;
  const errors = result.error.issues.map((issue) => ({
    field: [part, ...issue.path.map(String)].join('.'),
    message: issue.message,
  }));
  const first = errors[0];
  throw problems.badRequest(first ? `${first.field}: ${first.message}` : `invalid ${part}`, errors);
}
