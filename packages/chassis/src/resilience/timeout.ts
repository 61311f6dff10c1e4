import type { CallInfo, ClientPolicy } from '../client/client.ts';
import { UpstreamError } from '../client/errors.ts';
import { currentContext, runWithContext } from '../trace/context.ts';

export interface TotalTimeoutOptions {
  /** Time allowed for the whole call: bulkhead wait, every attempt and every backoff. */
  timeoutMs: number;
}

/**
 * An overall time limit per call, for callers that have no deadline of their own (background jobs, start-up).
 * client.ts already limits each attempt; without this, 3 attempts of 5 s plus backoff can take ~17 s.
 *
 * It works as a deadline: inside it the WorkContext's deadline is narrowed (when there is a context), so the
 * retry policy never plans a retry beyond it and the bulkhead stops waiting at it; and the policies' signal is
 * aborted when it passes, which ends the attempt in flight. The call then fails with a `timeout` UpstreamError.
 * Off by default: request handlers get their deadline from their caller.
 */
export function createTotalTimeoutPolicy(options: TotalTimeoutOptions): ClientPolicy {
  const { timeoutMs } = options;
  if (!(timeoutMs > 0)) throw new RangeError('total timeout must be > 0');
  return {
    async execute<T>(attempt: (signal: AbortSignal) => Promise<T>, call: CallInfo, signal: AbortSignal): Promise<T> {
      const controller = new AbortController();
      const timeoutError = new UpstreamError({ kind: 'timeout', service: call.service, operation: call.operation, message: `${call.service}.${call.operation} did not complete within ${timeoutMs} ms` });
      const forward = () => controller.abort(signal.reason);
      if (signal.aborted) forward();
      else signal.addEventListener('abort', forward, { once: true });
      let timer: NodeJS.Timeout | undefined;
      // Settles on time even if something inside does not listen to the signal.
      const expired = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          controller.abort(timeoutError);
          reject(timeoutError);
        }, timeoutMs);
      });
      const ctx = currentContext();
      const deadline = Date.now() + timeoutMs;
      const run = () => attempt(controller.signal);
      const inner = ctx && (ctx.deadline === undefined || ctx.deadline > deadline) ? runWithContext({ ...ctx, deadline }, run) : run();
      inner.catch(() => undefined); // if the timeout wins, the late outcome is dropped, not unhandled
      try {
        return await Promise.race([inner, expired]);
      } catch (err) {
        // The attempt aborted by our timer fails as a `connection` error; report what really happened.
        if (controller.signal.reason === timeoutError) throw timeoutError;
        throw err;
      } finally {
        clearTimeout(timer);
        signal.removeEventListener('abort', forward);
      }
    },
  };
}
