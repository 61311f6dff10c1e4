import type { FastifyInstance, FastifyRequest, preParsingHookHandler } from 'fastify';
import { addRouteHook, isInfraPath, routeKeysOf, sendProblem, unmatchedGuard, UNMATCHED_ROUTE_KEY, type RequestGuard } from './http-util.ts';
import { createMemoryRateLimitStore, type RateLimitDecision, type RateLimitRule, type RateLimitStore } from './rate-limit-store.ts';
import { throttledWarn, type WarnLog } from './warn-throttle.ts';

/** A named set of routes sharing one rule; a client's quota is per group. */
export interface RateLimitGroup extends RateLimitRule {
  name: string;
  /** `METHOD /path/template` as declared (e.g. `POST /orders`), or `*` for every route. */
  routes: string[];
}

export interface RateLimiterOptions {
  /** Default: the in-memory store. */
  store?: RateLimitStore;
  /** The rule for routes in no group; `false` leaves them unlimited. Default 100 per 10 s. */
  defaultRule?: RateLimitRule | false;
  /** Checked in order; the first group listing a route applies. */
  groups?: RateLimitGroup[];
  log?: WarnLog;
  /** "Store failing, failing open" warnings at most once per this. Default 30 000 ms. */
  warnIntervalMs?: number;
}

export interface RateLimiterStats {
  store: string;
  allowed: number;
  limited: number;
  /** Requests let through because the store failed. */
  failedOpen: number;
}

export interface RateLimiter {
  /** The group and rule for a route key, or undefined when the route is not limited. */
  ruleFor(routeKey: string): { group: string; rule: RateLimitRule } | undefined;
  /** Takes one request of `client`'s quota on `routeKey`; undefined when not limited or when the store failed (fail open). */
  check(routeKey: string, client: string): Promise<RateLimitDecision | undefined>;
  stats(): RateLimiterStats;
  /** Closes the store. */
  close(): Promise<void>;
}

/** 100 requests per 10 s per client: ten a second sustained, bursts of 100 (a page load fanning out) allowed. */
export const RATE_LIMIT_DEFAULTS: Readonly<RateLimitRule> = Object.freeze({ limit: 100, windowMs: 10_000 });

function validRule(rule: RateLimitRule, what: string): RateLimitRule {
  if (!Number.isInteger(rule.limit) || rule.limit < 1 || !(rule.windowMs >= 1)) throw new RangeError(`invalid rate limit for ${what}: ${rule.limit} per ${rule.windowMs} ms`);
  return { limit: rule.limit, windowMs: rule.windowMs };
}

export function createRateLimiter(options: RateLimiterOptions = {}): RateLimiter {
  const store = options.store ?? createMemoryRateLimitStore();
  const fallback = options.defaultRule === false ? undefined : { group: 'default', rule: validRule(options.defaultRule ?? RATE_LIMIT_DEFAULTS, 'default') };
  const groups = (options.groups ?? []).map((g) => ({ name: g.name, routes: new Set(g.routes), rule: validRule(g, g.name) }));
  const warn = throttledWarn(options.log, options.warnIntervalMs ?? 30_000);
  // Route keys are the app's route templates, a small fixed set: the lookup is done once per route.
  const cache = new Map<string, { group: string; rule: RateLimitRule } | undefined>();
  const stats = { allowed: 0, limited: 0, failedOpen: 0 };

  const ruleFor = (routeKey: string) => {
    if (cache.has(routeKey)) return cache.get(routeKey);
    const g = groups.find((x) => x.routes.has(routeKey) || x.routes.has('*'));
    const found = g ? { group: g.name, rule: g.rule } : fallback;
    cache.set(routeKey, found);
    return found;
  };

  return {
    ruleFor,
    async check(routeKey, client) {
      const applies = ruleFor(routeKey);
      if (!applies) return undefined;
      try {
        const decision = await store.consume(`${applies.group}:${client}`, applies.rule);
        if (decision.allowed) stats.allowed++;
        else stats.limited++;
        return decision;
      } catch (err) {
        // Fail open: an unreachable store must not turn into an outage of everything behind the gateway.
        stats.failedOpen++;
        warn({ err: (err as Error).message, store: store.kind }, 'rate limit store failed; request allowed (fail open)');
        return undefined;
      }
    },
    stats: () => ({ store: store.kind, ...stats }),
    close: () => store.close(),
  };
}

export interface RateLimitPluginOptions {
  limiter: RateLimiter;
  /**
   * Who the client is, e.g. the verified bearer token's subject. Return undefined for anonymous requests;
   * they are keyed by IP (`request.ip`, so set fastify's `trustProxy` behind a proxy). It runs after every
   * onRequest hook, so an authentication hook has identified the caller by then.
   */
  keyFor?: (request: FastifyRequest) => string | undefined;
  /** Routes never limited, by route key and path template. Default: health, metrics, admin and docs routes. */
  exempt?: (routeKey: string, path: string) => boolean;
}

/** Header values for a decision: IETF draft-ietf-httpapi-ratelimit-headers (draft-06/07 form), seconds rounded up. */
export function rateLimitHeaders(decision: RateLimitDecision, rule: RateLimitRule): Record<string, string> {
  return {
    'ratelimit-limit': String(decision.limit),
    'ratelimit-remaining': String(decision.remaining),
    'ratelimit-reset': String(Math.ceil(decision.resetMs / 1000)),
    'ratelimit-policy': `${rule.limit};w=${Math.ceil(rule.windowMs / 1000)}`,
  };
}

/**
 * The limit of one route key: takes one request of the client's quota, sets the RateLimit headers, or answers 429.
 * The client is `keyFor`'s subject, else the request's IP.
 */
function limitGuard(limiter: RateLimiter, keyFor: RateLimitPluginOptions['keyFor'], routeKey: string, rule: RateLimitRule): RequestGuard {
  return (request, reply, done) => {
    const subject = keyFor?.(request);
    const client = subject !== undefined ? `sub:${subject}` : `ip:${request.ip}`;
    limiter.check(routeKey, client).then((decision) => {
      if (!decision) return done();
      const headers = rateLimitHeaders(decision, rule);
      if (decision.allowed) {
        reply.headers(headers);
        return done();
      }
      // Whole seconds, at least 1: a client told "0" would come straight back.
      const retryAfter = String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)));
      sendProblem(reply, request, 429, 'rate_limited', `rate limit of ${rule.limit} requests per ${rule.windowMs / 1000} s exceeded; retry after ${retryAfter} s`, { ...headers, 'retry-after': retryAfter });
    }).catch((err: unknown) => {
      // The store fails open inside `check`; this is a throw further down the lifecycle: answer it once.
      if (!reply.sent) done(err as Error);
    });
  };
}

/**
 * Per-client rate limiting as a route-level `preParsing` hook: after every onRequest hook (authentication has
 * identified the client) and before the body is read. Every limited response carries the RateLimit headers; a
 * client over its quota gets 429 problem+json `rate_limited` with `Retry-After`.
 *
 * Attached per route when it is registered, with its group and rule looked up then (routes in no group and no
 * default rule get no hook at all), so call this BEFORE the routes are declared. Closing the app closes the
 * limiter's store.
 *
 * Returns the same limit for requests that match no route, for the not-found handler's `preValidation`
 * (`setNotFoundHandler({ preValidation: [guard] }, …)`), or undefined when no rule covers them. They are looked up
 * as `UNMATCHED_ROUTE_KEY`, which no group lists by name: they share the default rule's quota (or a `*` group's),
 * because a client probing unknown paths is the same client, and must not get a second quota to spend next to
 * its real one; nor does a 404 deserve a group and a setting of its own. Nothing runs authentication for them
 * (a 404 needs no identity), so `keyFor` usually finds nobody and they count against the caller's IP.
 */
export function rateLimitPlugin(app: FastifyInstance, options: RateLimitPluginOptions): RequestGuard | undefined {
  const { limiter, keyFor } = options;
  const exempt = options.exempt ?? ((_routeKey: string, path: string) => isInfraPath(path));

  app.addHook('onRoute', (route) => {
    for (const routeKey of routeKeysOf(route)) {
      if (exempt(routeKey, route.url)) continue;
      const applies = limiter.ruleFor(routeKey);
      if (!applies) continue;
      const method = routeKey.slice(0, routeKey.indexOf(' '));
      const limit = limitGuard(limiter, keyFor, routeKey, applies.rule);
      const hook: preParsingHookHandler = (request, reply, _payload, done) => {
        if (request.method !== method) return done();
        limit(request, reply, done);
      };
      addRouteHook(route, 'preParsing', hook);
    }
  });
  app.addHook('onClose', (_instance, done) => {
    limiter.close().then(() => done(), done);
  });
  const unmatched = limiter.ruleFor(UNMATCHED_ROUTE_KEY);
  return unmatched ? unmatchedGuard(limitGuard(limiter, keyFor, UNMATCHED_ROUTE_KEY, unmatched.rule), exempt) : undefined;
}
