import { UpstreamError } from '../../src/client/errors.ts';
import type { CallInfo } from '../../src/client/client.ts';

export const call = (retryable = true): CallInfo => ({ service: 'dep', operation: 'op', method: retryable ? 'GET' : 'POST', retryable });

/** A signal nobody aborts. */
export const idle = (): AbortSignal => new AbortController().signal;

export const httpError = (status: number, extra: Record<string, unknown> = {}): UpstreamError =>
  Object.assign(new UpstreamError({ kind: 'http', service: 'dep', operation: 'op', status, message: `answered ${status}` }), extra);

export const connectionError = (): UpstreamError => new UpstreamError({ kind: 'connection', service: 'dep', operation: 'op', message: 'refused' });
export const timeoutError = (): UpstreamError => new UpstreamError({ kind: 'timeout', service: 'dep', operation: 'op', message: 'slow' });

/** A fake attempt that fails with the given errors in order, then succeeds; counts its calls. */
export function scripted(outcomes: unknown[], value = 'ok'): { fn: (signal: AbortSignal) => Promise<string>; calls: () => number } {
  let n = 0;
  return {
    fn: async () => {
      const outcome = outcomes[n++];
      if (outcome !== undefined) throw outcome;
      return value;
    },
    calls: () => n,
  };
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Deterministic "random": cycles through the given values. */
export const sequence = (...values: number[]): (() => number) => {
  let i = 0;
  return () => values[i++ % values.length]!;
};
