/** The error to reject with when a signal aborts: its reason if it has one, else a standard AbortError. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/**
 * Waits `ms`, rejecting with the abort reason as soon as `signal` aborts; the timer and the listener are removed
 * whichever way it ends, so nothing outlives the wait.
 *
 * Timer policy for this folder: every timer belongs to one call that someone awaits and is cleared when that
 * call settles, so none can keep the process alive after its work. They are deliberately NOT unref'd: during a
 * retry backoff nothing else of the call is pending (no socket, no attempt timer), and an unref'd timer lets a
 * process that awaits the call (a script, a test, a drain on shutdown) exit in the middle of it.
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(abortReason(signal));
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
