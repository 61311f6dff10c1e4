/** `limit` requests per `windowMs`, as a burst or spread out (GCRA: a token bucket holding `limit` tokens). */
export interface RateLimitRule {
  limit: number;
  windowMs: number;
}

export interface RateLimitDecision {
  allowed: boolean;
  limit: number;
  /** Requests the client may still make right now. */
  remaining: number;
  /** Until the client's whole quota is back (RateLimit-Reset). */
  resetMs: number;
  /** Until the next request would be allowed; 0 when this one was (Retry-After). */
  retryAfterMs: number;
}

/**
 * Where rate-limit state lives. `consume` takes one request's worth of quota for `key` if there is any; it rejects
 * when the store cannot answer (the limiter then fails open).
 */
export interface RateLimitStore {
  readonly kind: string;
  consume(key: string, rule: RateLimitRule): Promise<RateLimitDecision>;
  close(): Promise<void>;
}

/**
 * The decision from GCRA's outcome. Both stores compute only `allowed`, `resetMs` and `retryAfterMs` (the Redis one
 * in Lua) and derive the rest here, so they agree to the request.
 */
export function gcraDecision(rule: RateLimitRule, allowed: boolean, resetMs: number, retryAfterMs: number): RateLimitDecision {
  const interval = rule.windowMs / rule.limit;
  // The epsilon absorbs float error: 3 requests of a 1000 ms / 3 window must leave exactly 0, not -1.
  const remaining = allowed ? Math.min(rule.limit - 1, Math.max(0, Math.floor((rule.windowMs - resetMs) / interval + 1e-9))) : 0;
  return { allowed, limit: rule.limit, remaining, resetMs: Math.max(0, resetMs), retryAfterMs: allowed ? 0 : Math.max(0, retryAfterMs) };
}

/**
 * One GCRA step (the generic cell rate algorithm, the token bucket expressed as one timestamp per client).
 * `tat` is the theoretical arrival time: when the client's bucket would be full again. Each request pushes it
 * `windowMs / limit` further; a request is refused when that would put it more than `windowMs` ahead of now.
 * One number per key, no timer, and exact at any rate — unlike fixed windows, which allow 2× the limit
 * across a window boundary.
 */
export function gcra(tat: number | undefined, now: number, rule: RateLimitRule): { decision: RateLimitDecision; tat: number | undefined } {
  const interval = rule.windowMs / rule.limit;
  const start = tat !== undefined && tat > now ? tat : now;
  const next = start + interval;
  const allowAt = next - rule.windowMs;
  if (now < allowAt) return { decision: gcraDecision(rule, false, start - now, allowAt - now), tat };
  return { decision: gcraDecision(rule, true, next - now, 0), tat: next };
}

export interface MemoryRateLimitStoreOptions {
  /** Clients tracked at most; beyond, the least recently seen is forgotten (it gets a fresh quota). Default 100 000. */
  maxKeys?: number;
  /** How often entries whose quota is full again are dropped. Default 10 000 ms. */
  sweepIntervalMs?: number;
  now?: () => number;
}

/**
 * Rate-limit state in this process: fine for one gateway instance (limits are per instance otherwise).
 * Memory is bounded by `maxKeys`, so a flood of distinct client keys (spoofed IPs) cannot exhaust it.
 */
export function createMemoryRateLimitStore(options: MemoryRateLimitStoreOptions = {}): RateLimitStore & { size(): number } {
  const maxKeys = options.maxKeys ?? 100_000;
  const now = options.now ?? Date.now;
  const tats = new Map<string, number>();

  const sweep = () => {
    const t = now();
    for (const [key, tat] of tats) if (tat <= t) tats.delete(key);
  };
  // unref'd: a sweep is housekeeping and must not keep a process alive.
  const timer = setInterval(sweep, options.sweepIntervalMs ?? 10_000);
  timer.unref();

  return {
    kind: 'memory',
    consume(key, rule) {
      const t = now();
      const { decision, tat } = gcra(tats.get(key), t, rule);
      if (decision.allowed && tat !== undefined) {
        // Re-inserting keeps the Map in least-recently-allowed order, so eviction drops the stalest client.
        tats.delete(key);
        if (tats.size >= maxKeys) {
          sweep();
          if (tats.size >= maxKeys) tats.delete(tats.keys().next().value!);
        }
        tats.set(key, tat);
      }
      return Promise.resolve(decision);
    },
    close() {
      clearInterval(timer);
      tats.clear();
      return Promise.resolve();
    },
    size: () => tats.size,
  };
}
