import type { ClientPolicy } from '../client/client.ts';

/** A policy that only runs the attempt: stands in for a real one in tests, or where a policy is switched off. */
export const noopPolicy: ClientPolicy = {
  execute: (attempt, _call, signal) => attempt(signal),
};
