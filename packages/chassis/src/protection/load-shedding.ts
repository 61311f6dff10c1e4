import type { FastifyInstance } from 'fastify';
import { createEventLoopMonitor, type EventLoopMonitor } from './event-loop-monitor.ts';
import { addRouteHook, isInfraPath, routeKeysOf, sendProblem, unmatchedGuard, UNMATCHED_ROUTE_KEY, type RequestGuard } from './http-util.ts';

export type ShedReason = 'in_flight' | 'event_loop_delay' | 'route_concurrency';

export interface LoadSheddingOptions {
  /** Requests in progress at once; the next is shed. 0 = no limit. Default 256. */
  maxInFlight?: number;
  /** Shed every new request while the event loop's mean delay over the last window is above this. 0 = off. Default 200 ms. */
  maxEventLoopDelayMs?: number;
  /** Window the event-loop delay is averaged over. Default 1000 ms. */
  eventLoopWindowMs?: number;
  /** `Retry-After` of a shed request. Default 1 s. */
  retryAfterSeconds?: number;
  /** Concurrency limits of expensive routes, by `METHOD /path/template`, e.g. `{ 'POST /orders': 32 }`. */
  routeConcurrency?: Record<string, number>;
  /** `isShedding()` stays true this long after the last shed request. Default 1000 ms. */
  holdMs?: number;
  /** Source of the event-loop delay in ms; default a perf_hooks monitor (tests pass their own). */
  eventLoopDelay?: () => number;
  now?: () => number;
}

export interface RouteConcurrencyStats {
  limit: number;
  inUse: number;
  rejected: number;
}

export interface LoadSheddingStats {
  inFlight: number;
  maxInFlight: number;
  eventLoopDelayMs: number;
  maxEventLoopDelayMs: number;
  shedding: boolean;
  /** Counter: every request answered 503 by the shedder. */
  shedTotal: number;
  shed: Record<ShedReason, number>;
  routes: Record<string, RouteConcurrencyStats>;
}

export interface RouteSlot {
  admit(): ShedReason | undefined;
  release(): void;
}

export interface LoadShedder {
  readonly retryAfterSeconds: number;
  /** Takes a slot for a request on `routeKey`, or says why not. Every admitted request must be `release`d once. */
  admit(routeKey: string): ShedReason | undefined;
  release(routeKey: string): void;
  /**
   * `admit`/`release` for one route, prepared once (at route registration): the request path then does no lookup.
   * `release` needs no `this`, so it can be a 'close' listener as it is.
   */
  slot(routeKey: string): RouteSlot;
  /** Overloaded right now: the event loop is lagging or requests were shed within `holdMs`. */
  isShedding(): boolean;
  /** A readiness check: throws while shedding, so a balancer steers traffic to other instances. */
  readinessCheck(): Promise<void>;
  stats(): LoadSheddingStats;
  /** Stops the event-loop monitor. */
  close(): void;
}

/**
 * 256 in flight: several times what a healthy instance has in progress (a few ms per request × a few thousand
 * requests/s), so only a real pile-up hits it, yet far below what exhausts memory or sockets.
 * 200 ms of mean event-loop delay: every request in the process is then about that much slower; callers'
 * timeouts start to fire and their retries would deepen the hole.
 */
export const LOAD_SHEDDING_DEFAULTS = Object.freeze({ maxInFlight: 256, maxEventLoopDelayMs: 200, eventLoopWindowMs: 1_000, retryAfterSeconds: 1, holdMs: 1_000 });

/**
 * The admission core: counts requests in progress (overall and per limited route), reads the event-loop delay,
 * decides who is turned away. No fastify in here, so it is unit-testable.
 */
export function createLoadShedder(options: LoadSheddingOptions = {}): LoadShedder {
  const maxInFlight = options.maxInFlight ?? LOAD_SHEDDING_DEFAULTS.maxInFlight;
  const maxDelay = options.maxEventLoopDelayMs ?? LOAD_SHEDDING_DEFAULTS.maxEventLoopDelayMs;
  const retryAfterSeconds = options.retryAfterSeconds ?? LOAD_SHEDDING_DEFAULTS.retryAfterSeconds;
  const holdMs = options.holdMs ?? LOAD_SHEDDING_DEFAULTS.holdMs;
  const now = options.now ?? Date.now;
  if (!(maxInFlight >= 0) || !(maxDelay >= 0) || !(retryAfterSeconds >= 0)) throw new RangeError('invalid load shedding options');
  let monitor: EventLoopMonitor | undefined;
  let delay = options.eventLoopDelay;
  if (!delay && maxDelay > 0) {
    monitor = createEventLoopMonitor({ windowMs: options.eventLoopWindowMs ?? LOAD_SHEDDING_DEFAULTS.eventLoopWindowMs });
    delay = monitor.delayMs;
  }
  const delayMs = delay ?? (() => 0);
  const routes = new Map<string, RouteConcurrencyStats>();
  for (const [key, limit] of Object.entries(options.routeConcurrency ?? {})) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`invalid concurrency limit for ${key}: ${limit}`);
    routes.set(key, { limit, inUse: 0, rejected: 0 });
  }
  let inFlight = 0;
  let lastShedAt = -Infinity;
  const shed: Record<ShedReason, number> = { in_flight: 0, event_loop_delay: 0, route_concurrency: 0 };

  const lagging = () => maxDelay > 0 && delayMs() > maxDelay;
  const reject = (reason: ShedReason): ShedReason => {
    shed[reason]++;
    // A saturated expensive route is that route's problem; only whole-process overload makes the instance unready.
    if (reason !== 'route_concurrency') lastShedAt = now();
    return reason;
  };

  const admit = (route: RouteConcurrencyStats | undefined): ShedReason | undefined => {
    if (lagging()) return reject('event_loop_delay');
    if (maxInFlight > 0 && inFlight >= maxInFlight) return reject('in_flight');
    if (route) {
      if (route.inUse >= route.limit) {
        route.rejected++;
        return reject('route_concurrency');
      }
      route.inUse++;
    }
    inFlight++;
    return undefined;
  };
  const release = (route: RouteConcurrencyStats | undefined): void => {
    inFlight--;
    if (route) route.inUse--;
  };

  return {
    retryAfterSeconds,
    admit: (routeKey) => admit(routes.get(routeKey)),
    release: (routeKey) => release(routes.get(routeKey)),
    slot(routeKey) {
      const route = routes.get(routeKey);
      return { admit: () => admit(route), release: () => release(route) };
    },
    isShedding: () => lagging() || now() - lastShedAt < holdMs,
    readinessCheck() {
      if (lagging()) return Promise.reject(new Error(`shedding load: event-loop delay ${Math.round(delayMs())} ms > ${maxDelay} ms`));
      if (now() - lastShedAt < holdMs) return Promise.reject(new Error(`shedding load: more than ${maxInFlight} requests in flight`));
      return Promise.resolve();
    },
    stats: () => ({
      inFlight,
      maxInFlight,
      eventLoopDelayMs: delayMs(),
      maxEventLoopDelayMs: maxDelay,
      shedding: lagging() || now() - lastShedAt < holdMs,
      shedTotal: shed.in_flight + shed.event_loop_delay + shed.route_concurrency,
      shed: { ...shed },
      routes: Object.fromEntries([...routes].map(([k, v]) => [k, { ...v }])),
    }),
    close: () => monitor?.close(),
  };
}

export interface LoadSheddingPluginOptions {
  shedder: LoadShedder;
  /**
   * Routes never shed, by route key (`GET /prices/stream`) and path template. Default: health, metrics, admin and
   * docs routes (probes and operators must get through). Also for long-lived routes (a server-sent events stream
   * would hold an in-flight slot for as long as its client listens).
   */
  exempt?: (routeKey: string, path: string) => boolean;
}

const DETAIL: Record<ShedReason, string> = {
  in_flight: 'too many requests in progress',
  event_loop_delay: 'the server is lagging',
  route_concurrency: 'too many requests in progress on this route',
};

/**
 * The shedding check of one route, with its slots (by method; a single slot serves every method) prepared at
 * registration: a request costs one counter check and one 'close' listener, no route lookup.
 */
function shedGuard(slots: Map<string, RouteSlot>, retryAfter: string): RequestGuard {
  const only = slots.size === 1 ? [...slots.values()][0]! : undefined;
  return (request, reply, done) => {
    const slot = only ?? slots.get(request.method);
    // A response already closed (the client left during an earlier async hook) would never emit 'close' again.
    if (slot === undefined || reply.raw.closed) return done();
    const reason = slot.admit();
    if (reason === undefined) {
      // 'close' fires once per response whether it finished or the client went away, so every slot comes back.
      reply.raw.on('close', slot.release);
      return done();
    }
    sendProblem(reply, request, 503, 'overloaded', `${DETAIL[reason]}; retry after ${retryAfter} s`, { 'retry-after': retryAfter }, { reason });
  };
}

/**
 * Load shedding as the first route-level onRequest hook of every route: an overloaded service answers 503
 * problem+json `overloaded` with `Retry-After` at once, before reading the body, instead of queueing work it will
 * finish too late.
 *
 * The hook is attached per route when the route is registered (fastify's `onRoute`), with that route's slot
 * prepared then: a request costs one counter check and one 'close' listener, no route lookup. So this must be
 * called BEFORE the routes are declared (like @fastify/rate-limit); routes declared earlier are not protected.
 * Closing the app stops the event-loop monitor.
 *
 * Returns the same check for requests that match no route, for the not-found handler's `preValidation`
 * (`setNotFoundHandler({ preValidation: [guard] }, …)`): no onRoute hook reaches that handler, and a flood of
 * unknown paths must be shed like any other load. They take an in-flight slot like any request (route key
 * `UNMATCHED_ROUTE_KEY`, never limited per route); exempt paths (infrastructure) are left alone.
 */
export function loadSheddingPlugin(app: FastifyInstance, options: LoadSheddingPluginOptions): RequestGuard {
  const { shedder } = options;
  const exempt = options.exempt ?? ((_routeKey: string, path: string) => isInfraPath(path));
  const retryAfter = String(shedder.retryAfterSeconds);

  app.addHook('onRoute', (route) => {
    const keys = routeKeysOf(route).filter((key) => !exempt(key, route.url));
    if (keys.length === 0) return;
    const slots = new Map(keys.map((key) => [key.slice(0, key.indexOf(' ')), shedder.slot(key)]));
    addRouteHook(route, 'onRequest', shedGuard(slots, retryAfter));
  });
  app.addHook('onClose', (_instance, done) => {
    shedder.close();
    done();
  });
  return unmatchedGuard(shedGuard(new Map([['*', shedder.slot(UNMATCHED_ROUTE_KEY)]]), retryAfter), exempt);
}
