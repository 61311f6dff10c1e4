import { z } from 'zod';
import { ConfigError, envFlag } from '../config/config.ts';
import { LOAD_SHEDDING_DEFAULTS } from './load-shedding.ts';
import { RATE_LIMIT_DEFAULTS, type RateLimitGroup } from './rate-limit.ts';

const flag = envFlag;

/** `POST /orders=32, GET /prices/:symbol=64` → `{ 'POST /orders': 32, 'GET /prices/:symbol': 64 }`. */
export function parseRouteConcurrency(value: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of value.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([A-Za-z]+ \/\S*)\s*=\s*(\d+)$/.exec(part);
    if (!m || Number(m[2]) < 1) throw new Error(`"${part}" is not "METHOD /path=limit"`);
    out[m[1]!.replace(/^[a-z]+/i, (x) => x.toUpperCase())] = Number(m[2]);
  }
  return out;
}

/**
 * The env keys of server protection, validated with a service's other config (spread into its config shape).
 * Each documents itself; docs/resilience.md explains the defaults.
 */
export const protectionConfigShape = {
  LOAD_SHED_ENABLED: flag(true, 'answer 503 at once when overloaded instead of queueing'),
  LOAD_SHED_MAX_IN_FLIGHT: z.coerce.number().int().min(0).default(LOAD_SHEDDING_DEFAULTS.maxInFlight).describe('requests in progress before new ones are shed (0 = no limit)'),
  LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: z.coerce.number().min(0).default(LOAD_SHEDDING_DEFAULTS.maxEventLoopDelayMs).describe('mean event-loop delay (last second) above which new requests are shed (0 = off)'),
  LOAD_SHED_RETRY_AFTER_SECONDS: z.coerce.number().int().min(0).max(3600).default(LOAD_SHEDDING_DEFAULTS.retryAfterSeconds).describe('Retry-After of a shed request'),
  LOAD_SHED_ROUTE_CONCURRENCY: z
    .string()
    .default('')
    .transform((v, ctx) => {
      try {
        return parseRouteConcurrency(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    })
    .describe('per-route concurrency limits: "POST /orders=32,GET /x=8"'),
  RATE_LIMIT_ENABLED: flag(true, 'per-client rate limits (on the services that install them: the gateway)'),
  RATE_LIMIT_LIMIT: z.coerce.number().int().min(1).optional().describe(`requests per window per client on routes in no group (default: the service's, else ${RATE_LIMIT_DEFAULTS.limit})`),
  RATE_LIMIT_WINDOW_MS: z.coerce.number().int().min(1).optional().describe(`rate limit window (default: the service's, else ${RATE_LIMIT_DEFAULTS.windowMs})`),
  RATE_LIMIT_REDIS_URL: z
    .string()
    .optional()
    .transform((v) => (v && v.trim() ? v.trim() : undefined))
    .pipe(z.string().url().optional())
    .describe('redis://… to share rate limits between instances (default: in memory, per instance)'),
  RATE_LIMIT_REDIS_TIMEOUT_MS: z.coerce.number().int().min(1).default(100).describe('longest wait for Redis per request before failing open'),
  FAULTS_ENABLED: flag(false, 'allow runtime fault injection via /admin/faults (never in production)'),
};

export type ProtectionConfig = z.infer<z.ZodObject<typeof protectionConfigShape>>;

/** `RATE_LIMIT_<GROUP>_LIMIT` / `RATE_LIMIT_<GROUP>_WINDOW_MS` for a group name (`place-order` → `PLACE_ORDER`). */
export function rateLimitGroupEnvNames(group: string): { limit: string; windowMs: string } {
  const suffix = group.replace(/[^A-Za-z0-9]+/g, '_').toUpperCase();
  return { limit: `RATE_LIMIT_${suffix}_LIMIT`, windowMs: `RATE_LIMIT_${suffix}_WINDOW_MS` };
}

/** The groups with their per-group env overrides applied; throws a ConfigError naming every bad variable. */
export function rateLimitGroupsFromEnv(groups: RateLimitGroup[], env: Record<string, string | undefined>): RateLimitGroup[] {
  const issues: string[] = [];
  const read = (name: string, fallback: number) => {
    const raw = env[name]?.trim();
    if (!raw) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) issues.push(`${name}: must be a whole number ≥ 1 (got "${raw}")`);
    return n;
  };
  const out = groups.map((g) => {
    const names = rateLimitGroupEnvNames(g.name);
    return { ...g, limit: read(names.limit, g.limit), windowMs: read(names.windowMs, g.windowMs) };
  });
  if (issues.length > 0) throw new ConfigError('rate limits', issues);
  return out;
}
