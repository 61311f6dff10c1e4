import type { CallInfo, ClientPolicy } from '../client/client.ts';
import { UpstreamError } from '../client/errors.ts';
import { currentContext } from '../trace/context.ts';
import type { Fault, FaultAction, FaultRegistry } from './faults.ts';

export interface FaultPolicyOptions {
  /**
   * The per-attempt timeout of the client this policy sits in (client.ts's `timeoutMs`, default 5000): injected
   * latency longer than it ends as the timeout a really slow dependency would cause.
   */
  attemptTimeoutMs?: number;
  /** The absolute deadline of the current unit of work; default: `currentContext()?.deadline`. */
  deadline?: () => number | undefined;
}

/** A failure injected into an outgoing call; an UpstreamError (kind `connection` or `timeout`) like a real one. */
export class InjectedFaultError extends UpstreamError {
  readonly faultId: string;

  constructor(init: { kind: 'connection' | 'timeout'; call: CallInfo; fault: Fault; message: string }) {
    super({ kind: init.kind, service: init.call.service, operation: init.call.operation, message: init.message });
    this.faultId = init.fault.id;
  }
}

/**
 * Waits `ms` or until `fault` is removed, whichever is first; resolves true if the full time passed. Rejects with
 * the abort reason when `signal` aborts (an outer timeout, a caller giving up).
 */
function waitOut(registry: FaultRegistry, fault: Fault, ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      unsubscribe();
      signal.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      cleanup();
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      cleanup();
      resolve(true);
    }, ms);
    const unsubscribe = registry.onRemoved((removed) => {
      if (removed !== fault) return;
      cleanup();
      resolve(false);
    });
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Applies outgoing faults for `dependency` before the attempt: latency, a connection-like failure, or a hang.
 * Put it innermost (last in `policies`), so retry, breaker and bulkhead see injected failures as real attempts.
 *
 * The injected wait happens before the attempt, outside client.ts's per-attempt timer, so the policy enforces it
 * itself: a wait reaching the attempt timeout or the deadline fails as a `timeout`, the way a slow dependency
 * would. A hang is a wait without end, so it always ends that way (or when the fault is cleared: then the call
 * goes ahead).
 */
export function faultPolicy(registry: FaultRegistry, dependency: string, options: FaultPolicyOptions = {}): ClientPolicy {
  const attemptTimeoutMs = options.attemptTimeoutMs ?? 5_000;
  const deadlineOf = options.deadline ?? (() => currentContext()?.deadline);
  const apply = async <T>(action: FaultAction, attempt: (signal: AbortSignal) => Promise<T>, call: CallInfo, signal: AbortSignal): Promise<T> => {
    const { fault } = action;
    const wait = action.hang ? Infinity : action.latencyMs;
    if (wait > 0) {
      const deadline = deadlineOf();
      // setTimeout treats anything above 2^31-1 ms as 1 ms; no real attempt timeout is that long anyway.
      const cap = Math.max(0, Math.min(attemptTimeoutMs, deadline !== undefined ? deadline - Date.now() : Infinity, 2 ** 31 - 1));
      if (wait >= cap) {
        const fullTime = await waitOut(registry, fault, cap, signal);
        if (fullTime) {
          throw new InjectedFaultError({ kind: 'timeout', call, fault, message: `${call.service}.${call.operation} timed out after ${Math.round(cap)} ms (injected fault ${fault.id})` });
        }
        return attempt(signal); // the fault was cleared while the call waited
      }
      if (!(await waitOut(registry, fault, wait, signal))) return attempt(signal);
    }
    if (action.error) throw new InjectedFaultError({ kind: 'connection', call, fault, message: `${call.service}.${call.operation} failed: injected fault ${fault.id}` });
    return attempt(signal);
  };
  return {
    // Not async: with no fault set (the normal case) a call costs one size check, not an extra promise.
    execute<T>(attempt: (signal: AbortSignal) => Promise<T>, call: CallInfo, signal: AbortSignal): Promise<T> {
      if (registry.size() === 0) return attempt(signal);
      const action = registry.outgoing(dependency, call.operation);
      return action ? apply(action, attempt, call, signal) : attempt(signal);
    },
  };
}
