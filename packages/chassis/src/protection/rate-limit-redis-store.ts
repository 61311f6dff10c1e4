import { Redis } from 'ioredis';
import { gcraDecision, type RateLimitRule, type RateLimitStore } from './rate-limit-store.ts';
import { throttledWarn, type WarnLog } from './warn-throttle.ts';

/**
 * The same GCRA step as `gcra()` in rate-limit-store.ts, atomically in Redis, so every gateway instance draws on one
 * quota per client. Redis's clock (TIME) is the only clock, so instances with skewed clocks still agree. Numbers go
 * back as strings: Redis truncates Lua numbers in replies to integers.
 */
const GCRA_LUA = `
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local nxt = tat + interval
local allowAt = nxt - window
if now < allowAt then
  return {0, string.format('%.3f', tat - now), string.format('%.3f', allowAt - now)}
end
redis.call('SET', KEYS[1], string.format('%.3f', nxt), 'PX', math.ceil(nxt - now))
return {1, string.format('%.3f', nxt - now), '0'}
`;

type GcraReply = [allowed: number, resetMs: string, retryAfterMs: string];
type RedisWithGcra = Redis & { simplebankGcra(key: string, intervalMs: string, windowMs: string): Promise<GcraReply> };

export interface RedisRateLimitStoreOptions {
  /** `redis://host:port/db`; ignored when `client` is given. */
  url?: string;
  /** An existing connection (the store then still closes it on `close()`). */
  client?: Redis;
  /** Key prefix, so the limits can share a Redis with other data. Default `simplebank:ratelimit:`. */
  prefix?: string;
  /** Longest wait for Redis per request; beyond, the call fails and the limiter fails open. Default 100 ms. */
  commandTimeoutMs?: number;
  log?: WarnLog;
  /** Connection-problem warnings at most once per this. Default 30 000 ms. */
  warnIntervalMs?: number;
}

/**
 * Rate-limit state in Redis, shared by all instances. While Redis is unreachable every `consume` fails at once
 * (no offline queue: a queued check would hold the request until Redis is back) and the limiter lets the request
 * through; ioredis keeps reconnecting in the background.
 */
export function createRedisRateLimitStore(options: RedisRateLimitStoreOptions): RateLimitStore & { ready(timeoutMs?: number): Promise<void> } {
  const prefix = options.prefix ?? 'simplebank:ratelimit:';
  const redis = (options.client ??
    new Redis(options.url ?? 'redis://127.0.0.1:6379', {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? 100,
      // Reconnect forever, at most every 2 s: the limiter is meant to recover by itself when Redis does.
      retryStrategy: (times) => Math.min(times * 100, 2_000),
    })) as RedisWithGcra;
  redis.defineCommand('simplebankGcra', { numberOfKeys: 1, lua: GCRA_LUA });
  const warn = throttledWarn(options.log, options.warnIntervalMs ?? 30_000);
  // Without a listener ioredis prints every connection error to stderr; route them to the (throttled) log instead.
  redis.on('error', (err: Error) => warn({ err: err.message }, 'rate limit store: Redis unreachable; requests are allowed (fail open)'));

  return {
    kind: 'redis',
    async consume(key: string, rule: RateLimitRule) {
      const [allowed, resetMs, retryAfterMs] = await redis.simplebankGcra(prefix + key, String(rule.windowMs / rule.limit), String(rule.windowMs));
      return gcraDecision(rule, allowed === 1, Number(resetMs), Number(retryAfterMs));
    },
    /** Resolves once connected (for start-up and tests); rejects after `timeoutMs` (default 2000). */
    ready(timeoutMs = 2_000) {
      if (redis.status === 'ready') return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          redis.off('ready', onReady);
          reject(new Error(`Redis not ready after ${timeoutMs} ms (status ${redis.status})`));
        }, timeoutMs);
        const onReady = () => {
          clearTimeout(timer);
          resolve();
        };
        redis.once('ready', onReady);
      });
    },
    async close() {
      try {
        await redis.quit();
      } catch {
        redis.disconnect(); // not connected: quit cannot be sent, just stop reconnecting
      }
    },
  };
}
