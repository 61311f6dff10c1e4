import type { FastifyInstance, FastifyRequest } from 'fastify';
import { rateLimitGroupsFromEnv, type ProtectionConfig } from './config.ts';
import { faultsPlugin } from './faults-http.ts';
import { createFaultRegistry, type FaultRegistry } from './faults.ts';
import { createLoadShedder, loadSheddingPlugin, type LoadShedder, type LoadSheddingStats } from './load-shedding.ts';
import { createRedisRateLimitStore } from './rate-limit-redis-store.ts';
import { addRouteHook, isInfraPath, type RequestGuard } from './http-util.ts';
import type { RateLimitRule } from './rate-limit-store.ts';
import { createRateLimiter, RATE_LIMIT_DEFAULTS, rateLimitPlugin, type RateLimitGroup, type RateLimiter, type RateLimiterStats } from './rate-limit.ts';

export interface ProtectionOptions {
  config: ProtectionConfig;
  /** Read for the per-group overrides `RATE_LIMIT_<GROUP>_LIMIT|WINDOW_MS`. Default `process.env`. */
  env?: Record<string, string | undefined>;
  serviceToken: string;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** The registry the service's `faultPolicy`s use; default a new one from `FAULTS_ENABLED`. */
  faults?: FaultRegistry;
  /** Concurrency limits of expensive routes (`LOAD_SHED_ROUTE_CONCURRENCY` entries win). */
  routeConcurrency?: Record<string, number>;
  /**
   * Routes never shed besides health, metrics, admin and docs, e.g. long-lived streams (`GET /prices/stream`): a
   * server-sent events client would hold an in-flight slot for as long as it listens.
   */
  sheddingExempt?: string[];
  /**
   * Who the caller is, for services facing clients (the gateway): runs as a route-level onRequest hook after load
   * shedding and incoming faults, so an overloaded service sheds before spending CPU on a token, and before rate
   * limits, which count per identified client. Throw (e.g. a 401 problem) to refuse the request. Not run for
   * health, metrics, admin and docs routes, nor for requests that match no route.
   */
  authenticate?: (request: FastifyRequest) => Promise<void>;
  /** Per-client rate limits: only services facing clients (the gateway) pass this. */
  rateLimit?: {
    /** The rule for routes in no group; `RATE_LIMIT_LIMIT` / `RATE_LIMIT_WINDOW_MS` win. Default 100 per 10 s. */
    defaultRule?: RateLimitRule;
    groups?: RateLimitGroup[];
    /** The client of a request, e.g. the verified token's subject (runs after every onRequest hook); else its IP. */
    keyFor?: (request: FastifyRequest) => string | undefined;
  };
}

export interface Protection {
  shedder: LoadShedder | undefined;
  limiter: RateLimiter | undefined;
  faults: FaultRegistry;
  /** Readiness checks to add to the service's: `load` fails while shedding. */
  readiness: Record<string, () => Promise<void>>;
  /**
   * The protections of requests that match no route, in order (shedding, then the rate limit), for the not-found
   * handler: `app.setNotFoundHandler({ preValidation: protection.notFoundHooks }, handler)`. Empty when neither is on.
   */
  notFoundHooks: RequestGuard[];
  stats(): { loadShedding?: LoadSheddingStats; rateLimit?: RateLimiterStats; faults: number };
}

/**
 * Installs every server protection on `app`: load shedding and incoming fault injection as the first route-level
 * onRequest hooks of each route (in that order, so a request held by a fault holds an in-flight slot, as real slow
 * work would), rate limits as a preParsing hook (after every onRequest hook, so authentication has identified the
 * client; before the body is read). Each hook is attached when its route is registered, with the route's limits
 * looked up then, so the request path does no lookup: call this on the root instance BEFORE declaring routes.
 * Closing the app stops the monitors and closes the Redis store.
 *
 * No onRoute hook reaches the not-found handler: `notFoundHooks` are its protections, for its `preValidation` (the
 * earliest stage fastify lets a 404 handler have hooks of its own; an app-level onRequest hook would cost every
 * request). Shedding and the rate limit only: no incoming faults (they target the routes callers depend on, and
 * no caller depends on a 404) and no authentication (a 404 needs no identity: spending a token check on a
 * scanner's guesses is what this avoids; the limit counts them against the caller's IP unless `keyFor` knows it
 * without authentication).
 */
export function registerProtection(app: FastifyInstance, options: ProtectionOptions): Protection {
  const { config, log } = options;
  const faults = options.faults ?? createFaultRegistry({ enabled: config.FAULTS_ENABLED });

  const notFoundHooks: RequestGuard[] = [];
  let shedder: LoadShedder | undefined;
  if (config.LOAD_SHED_ENABLED) {
    shedder = createLoadShedder({
      maxInFlight: config.LOAD_SHED_MAX_IN_FLIGHT,
      maxEventLoopDelayMs: config.LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS,
      retryAfterSeconds: config.LOAD_SHED_RETRY_AFTER_SECONDS,
      routeConcurrency: { ...options.routeConcurrency, ...config.LOAD_SHED_ROUTE_CONCURRENCY },
    });
    const exemptRoutes = new Set(options.sheddingExempt ?? []);
    notFoundHooks.push(loadSheddingPlugin(app, { shedder, exempt: (routeKey, path) => isInfraPath(path) || exemptRoutes.has(routeKey) }));
  }

  // Incoming faults right after shedding (see above); the admin routes come with them.
  faultsPlugin(app, { registry: faults, serviceToken: options.serviceToken, ...(log ? { log } : {}) });

  const { authenticate } = options;
  if (authenticate) {
    const hook = (request: FastifyRequest) => authenticate(request);
    app.addHook('onRoute', (route) => {
      if (!isInfraPath(route.url)) addRouteHook(route, 'onRequest', hook);
    });
  }

  let limiter: RateLimiter | undefined;
  if (options.rateLimit && config.RATE_LIMIT_ENABLED) {
    const store = config.RATE_LIMIT_REDIS_URL
      ? createRedisRateLimitStore({ url: config.RATE_LIMIT_REDIS_URL, commandTimeoutMs: config.RATE_LIMIT_REDIS_TIMEOUT_MS, ...(log ? { log } : {}) })
      : undefined;
    const defaults = options.rateLimit.defaultRule ?? RATE_LIMIT_DEFAULTS;
    limiter = createRateLimiter({
      ...(store ? { store } : {}),
      defaultRule: { limit: config.RATE_LIMIT_LIMIT ?? defaults.limit, windowMs: config.RATE_LIMIT_WINDOW_MS ?? defaults.windowMs },
      groups: rateLimitGroupsFromEnv(options.rateLimit.groups ?? [], options.env ?? process.env),
      ...(log ? { log } : {}),
    });
    const limitUnmatched = rateLimitPlugin(app, { limiter, ...(options.rateLimit.keyFor ? { keyFor: options.rateLimit.keyFor } : {}) });
    if (limitUnmatched) notFoundHooks.push(limitUnmatched);
  }

  // Registered after the faults plugin's own onClose: by then no held request is left to release.
  app.addHook('onClose', (_instance, done) => {
    faults.close();
    done();
  });
  if (faults.enabled) log?.warn({}, 'fault injection is enabled (FAULTS_ENABLED=true): /admin/faults accepts faults');

  const readiness: Record<string, () => Promise<void>> = shedder ? { load: () => shedder.readinessCheck() } : {};
  return {
    shedder,
    limiter,
    faults,
    readiness,
    notFoundHooks,
    stats: () => ({
      ...(shedder ? { loadShedding: shedder.stats() } : {}),
      ...(limiter ? { rateLimit: limiter.stats() } : {}),
      faults: faults.size(),
    }),
  };
}
