/**
 * A value read at scrape time from somewhere slow (a database query, the bus' API), shared by the gauges that
 * show parts of it and bounded in time.
 *
 * - One read serves every gauge of one scrape (and concurrent scrapes): the result is reused for `maxAgeMs`.
 * - A read that fails or takes longer than `timeoutMs` yields undefined and is reported (the caller logs it,
 *   throttled); the gauges then keep their last values. A scrape never fails because a dependency is down: the
 *   process metrics and everything else still come out.
 */
export interface SamplerOptions {
  maxAgeMs?: number;
  timeoutMs?: number;
  onError?: (err: unknown) => void;
  now?: () => number;
}

export function sampler<T>(read: () => Promise<T>, options: SamplerOptions = {}): () => Promise<T | undefined> {
  const maxAgeMs = options.maxAgeMs ?? 1_000;
  const timeoutMs = options.timeoutMs ?? 2_000;
  const now = options.now ?? Date.now;
  let current: { at: number; value: Promise<T | undefined> } | undefined;

  const readOnce = (): Promise<T | undefined> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
    });
    return Promise.race([read(), timeout])
      .catch((err: unknown) => {
        options.onError?.(err);
        return undefined;
      })
      .finally(() => clearTimeout(timer));
  };

  return () => {
    const t = now();
    if (!current || t - current.at > maxAgeMs) current = { at: t, value: readOnce() };
    return current.value;
  };
}
