/** The part of a pino logger the protection modules use. */
export interface WarnLog {
  warn(obj: object, msg: string): void;
}

/**
 * A warning written at most once per `intervalMs`, with how many were suppressed since the last one. A dependency
 * that is down fails every request; one line per request would bury the log (and cost CPU) for no extra news.
 */
export function throttledWarn(log: WarnLog | undefined, intervalMs: number, now: () => number = Date.now): (obj: object, msg: string) => void {
  let last = -Infinity;
  let suppressed = 0;
  return (obj, msg) => {
    const t = now();
    if (t - last < intervalMs) {
      suppressed++;
      return;
    }
    log?.warn({ ...obj, suppressed }, msg);
    last = t;
    suppressed = 0;
  };
}
