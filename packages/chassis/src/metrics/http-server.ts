import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { UNMATCHED_ROUTE_KEY } from '../protection/http-util.ts';
import { LATENCY_BUCKETS, type ServiceMetrics } from './registry.ts';
import type { CounterSeries, HistogramFamily, HistogramSeries } from './series.ts';

export interface HttpServerMetricsOptions {
  /** Routes left out of every HTTP metric, by path template. Default: `/metrics` and `/health/*`. */
  exclude?: (url: string) => boolean;
  /**
   * The rate-limit group of a route key (`POST /orders`), or undefined when the route is not limited: a 429 on a
   * limited route counts in `http_server_rate_limited_total{group}`.
   */
  rateLimitGroup?: (routeKey: string) => string | undefined;
}

export const isMetricsExcluded = (url: string): boolean => url === '/metrics' || url.startsWith('/health/');

const kStart = Symbol('simplebank.metrics.start');
const kOpen = Symbol('simplebank.metrics.open');
type Timed = FastifyRequest & { [kStart]: number; [kOpen]: boolean };

const STATUS_CLASS = ['1xx', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;
const classIndex = (status: number): number => {
  const c = (status / 100) | 0;
  return c >= 1 && c <= 5 ? c : 5;
};

type Labels = 'method' | 'route' | 'status_class';

/** One route's series, per method and status class, created on first use and kept (no lookup afterwards). */
class RouteSeries {
  readonly #byMethod = new Map<string, (HistogramSeries | undefined)[]>();
  readonly #limited = new Map<string, CounterSeries | undefined>();
  #lastMethod = '';
  #lastSlots: (HistogramSeries | undefined)[] = [];

  constructor(
    readonly histogram: HistogramFamily<Labels>,
    readonly url: string,
    readonly limitedSeries: (method: string) => CounterSeries | undefined,
  ) {}

  record(request: FastifyRequest, reply: FastifyReply): void {
    const started = (request as Timed)[kStart];
    if (started === 0) return;
    const method = request.method;
    let slots = this.#lastSlots;
    if (method !== this.#lastMethod) {
      slots = this.#byMethod.get(method) ?? [];
      this.#byMethod.set(method, slots);
      this.#lastMethod = method;
      this.#lastSlots = slots;
    }
    const status = reply.statusCode;
    const c = classIndex(status);
    const series = (slots[c] ??= this.histogram.series({ method, route: this.url, status_class: STATUS_CLASS[c]! }));
    series.observe((performance.now() - started) / 1000);
    if (status === 429) {
      if (!this.#limited.has(method)) this.#limited.set(method, this.limitedSeries(method));
      this.#limited.get(method)?.inc();
    }
  }
}

/** Adds `hook` to a route being registered, after the hooks it already has for that stage. */
function appendRouteHook(route: RouteOptions, stage: 'onRequest' | 'onSend' | 'onResponse', hook: unknown): void {
  const own = (route as unknown as Record<string, unknown>)[stage];
  const list = own === undefined ? [] : Array.isArray(own) ? [...(own as unknown[])] : [own];
  list.push(hook);
  (route as unknown as Record<string, unknown>)[stage] = list;
}

/**
 * RED metrics of an HTTP server, as a plugin: call it on the root instance BEFORE the routes are declared (their
 * hooks are attached as they are registered).
 *
 * - `http_server_request_duration_seconds{method, route, status_class}`: `route` is the route's template
 *   (`/orders/:id`, never the raw path), `unmatched` for requests that matched no route (404), so labels stay
 *   bounded whatever clients send. Time runs from the first onRequest hook (before load shedding, rate limits and
 *   injected faults, which are part of what the caller waits for) until the response is handed to the socket.
 * - `http_server_requests_in_flight`: requests between onRequest and their response.
 * - `http_server_rate_limited_total{group}`: 429 answers on rate-limited routes (`rateLimitGroup`), and on requests
 *   that matched no route (looked up as `UNMATCHED_ROUTE_KEY`).
 *
 * What it costs per request: one global onRequest hook (a clock read) and onSend hooks (a bucket scan and three
 * additions on a series resolved once per route). No global onResponse hook: that makes fastify listen for
 * 'finish' and 'error' on every response, measurably (bench/rpc). Routes that already have an onResponse hook
 * (the chassis' own non-contract routes, for their access log) record there instead, so a reply that bypasses
 * onSend (`reply.hijack()`, server-sent events) is still counted and leaves the in-flight gauge.
 */
export function httpServerMetrics(app: FastifyInstance, metrics: ServiceMetrics, options: HttpServerMetricsOptions = {}): void {
  const exclude = options.exclude ?? isMetricsExcluded;
  const duration = metrics.histogram<Labels>({
    name: 'http_server_request_duration_seconds',
    help: 'HTTP requests served, by method, route template (unmatched for 404s) and status class; _count is traffic',
    labelNames: ['method', 'route', 'status_class'],
    buckets: LATENCY_BUCKETS,
  });
  let inFlight = 0;
  metrics.gauge({
    name: 'http_server_requests_in_flight',
    help: 'HTTP requests being served now (health and metrics routes excluded)',
    collect() {
      this.set(inFlight);
    },
  });
  const rateLimited = metrics.counter<'group'>({
    name: 'http_server_rate_limited_total',
    help: 'HTTP requests answered 429 by a per-client rate limit, by rate-limit group',
    labelNames: ['group'],
  });

  const leave = (request: FastifyRequest): void => {
    const r = request as Timed;
    if (r[kOpen]) {
      r[kOpen] = false;
      inFlight--;
    }
  };

  app.decorateRequest(kStart, 0);
  app.decorateRequest(kOpen, false);
  // Callback-style hooks: an async hook costs fastify a promise per request.
  app.addHook('onRequest', (request, _reply, done) => {
    const r = request as Timed;
    r[kStart] = performance.now();
    r[kOpen] = true;
    inFlight++;
    done();
  });

  const limitedSeriesOf = (routeKey: string): CounterSeries | undefined => {
    const group = options.rateLimitGroup?.(routeKey);
    return group === undefined ? undefined : rateLimited.series({ group });
  };

  // Requests for unknown paths are rate-limited by one route key whatever their method (server protection).
  const unmatched = new RouteSeries(duration, 'unmatched', () => limitedSeriesOf(UNMATCHED_ROUTE_KEY));
  app.addHook('onSend', (request, reply, payload, done) => {
    leave(request);
    if (request.is404) unmatched.record(request, reply);
    done(null, payload);
  });

  app.addHook('onRoute', (route) => {
    const url = route.url ?? route.path;
    if (exclude(url)) {
      // Not in flight either: a scrape would otherwise always see itself.
      appendRouteHook(route, 'onRequest', (request: FastifyRequest, _reply: FastifyReply, done: () => void) => {
        leave(request);
        done();
      });
      return;
    }
    const limitedSeries = (method: string): CounterSeries | undefined => limitedSeriesOf(`${method} ${url}`);
    const series = new RouteSeries(duration, url, limitedSeries);
    // Exported at 0 from the start, so a rate-limited route's counter exists before its first 429.
    for (const m of Array.isArray(route.method) ? route.method : [route.method]) limitedSeries(String(m).toUpperCase());
    if (route.onResponse !== undefined && route.onResponse !== null) {
      appendRouteHook(route, 'onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
        leave(request);
        series.record(request, reply);
        done();
      });
    } else {
      appendRouteHook(route, 'onSend', (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void) => {
        series.record(request, reply);
        done(null, payload);
      });
    }
  });
}
