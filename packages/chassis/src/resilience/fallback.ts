import { isUpstreamError } from '../client/errors.ts';

export interface FallbackOptions {
  /** Which failures fall back. Default: failed dependency calls (UpstreamError, incl. rejections), so a bug is not hidden. */
  when?: (error: unknown) => boolean;
}

/**
 * Runs `fn`; if it fails with a dependency failure, answers with `fallback(error)` instead: a default, a
 * cached value, a degraded answer (e.g. holdings without valuations).
 */
export async function withFallback<T, F = T>(fn: () => Promise<T>, fallback: (error: unknown) => F | Promise<F>, options: FallbackOptions = {}): Promise<T | F> {
  const when = options.when ?? isUpstreamError;
  try {
    return await fn();
  } catch (err) {
    if (!when(err)) throw err;
    return fallback(err);
  }
}

export interface StaleCacheOptions {
  /** A value younger than this is served without loading. Default 1000 ms. */
  ttlMs?: number;
  /**
   * How long after expiring (ttl) a value may still be served, marked stale, when loading fails — like HTTP's
   * `stale-if-error`. Default 300 000 ms (5 min).
   */
  maxStaleMs?: number;
  /** Entries kept; the least recently used goes first. Default 1000. */
  maxEntries?: number;
  /**
   * Which load failures the last value may stand in for. Default: any. Pass e.g. `isUpstreamError` so that a bug
   * (or a "no such thing" answer) is not hidden behind an old value.
   */
  serveStaleOn?: (error: unknown) => boolean;
  now?: () => number;
}

export interface CacheResult<V> {
  value: V;
  /** True when loading failed and this is an older value. */
  stale: boolean;
  /** Age of the value (ms since it was loaded). */
  ageMs: number;
}

export interface StaleCache<K, V> {
  /**
   * The value for `key`: cached if fresh, else from `load()`; if `load()` fails, the last value marked stale (if
   * not older than ttl + maxStale), else the load error. Concurrent gets of one key share one load.
   */
  get(key: K, load: () => Promise<V>): Promise<CacheResult<V>>;
  /** The cached value without loading, fresh or stale, if still servable. */
  peek(key: K): CacheResult<V> | undefined;
  delete(key: K): boolean;
  clear(): void;
  readonly size: number;
}

export const STALE_CACHE_DEFAULTS = { ttlMs: 1_000, maxStaleMs: 300_000, maxEntries: 1_000 } as const;

/** A small LRU cache that keeps serving the last good value, marked stale, while its source is failing. */
export function createStaleCache<K, V>(options: StaleCacheOptions = {}): StaleCache<K, V> {
  const ttlMs = options.ttlMs ?? STALE_CACHE_DEFAULTS.ttlMs;
  const maxStaleMs = options.maxStaleMs ?? STALE_CACHE_DEFAULTS.maxStaleMs;
  const maxEntries = options.maxEntries ?? STALE_CACHE_DEFAULTS.maxEntries;
  const now = options.now ?? Date.now;
  const serveStaleOn = options.serveStaleOn ?? (() => true);
  if (!(ttlMs >= 0) || !(maxStaleMs >= 0) || !(maxEntries >= 1)) throw new RangeError('invalid stale cache options');
  // Map iteration order is insertion order: re-inserting on use makes the first key the least recently used.
  const entries = new Map<K, { value: V; loadedAt: number }>();
  const loading = new Map<K, Promise<CacheResult<V>>>();

  const lookup = (key: K): CacheResult<V> | undefined => {
    const entry = entries.get(key);
    if (!entry) return undefined;
    const ageMs = now() - entry.loadedAt;
    if (ageMs > ttlMs + maxStaleMs) {
      entries.delete(key);
      return undefined;
    }
    entries.delete(key);
    entries.set(key, entry);
    return { value: entry.value, stale: ageMs >= ttlMs, ageMs };
  };

  const store = (key: K, value: V) => {
    entries.delete(key);
    entries.set(key, { value, loadedAt: now() });
    if (entries.size > maxEntries) entries.delete(entries.keys().next().value as K);
  };

  return {
    get(key, load) {
      const cached = lookup(key);
      if (cached && !cached.stale) return Promise.resolve(cached);
      const pending = loading.get(key);
      if (pending) return pending;
      // Chained (not an async IIFE) so `load` starts after `loading.set`, even when it throws synchronously.
      const result = Promise.resolve()
        .then(load)
        .then(
          (value): CacheResult<V> => {
            store(key, value);
            return { value, stale: false, ageMs: 0 };
          },
          (err: unknown): CacheResult<V> => {
            if (!serveStaleOn(err)) throw err;
            const last = lookup(key);
            if (last) return { ...last, stale: true };
            throw err;
          },
        )
        .finally(() => loading.delete(key));
      loading.set(key, result);
      return result;
    },
    peek: lookup,
    delete: (key) => entries.delete(key),
    clear: () => entries.clear(),
    get size() {
      return entries.size;
    },
  };
}
