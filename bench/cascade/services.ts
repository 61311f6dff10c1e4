// The three services of the cascade benchmark (chapter 6.2.2 of Microservices in Action), built with the chassis
// exactly as a real service is (`defineService` / `startService`):
//
//   load ──▶ edge (a BFF route: GET /screen/:customer/:symbol) ──┬──▶ holdings  (A: healthy, ~5 ms)
//                                                              └──▶ prices    (B: limited capacity, ~20 ms per slot)
//
// The edge fans out to A and B in parallel and answers with both parts. B serves with a fixed number of worker
// slots (like a thread pool with an unbounded queue): `slots / serviceMs` requests per second. The benchmark
// halves its slots at runtime through a bench-only admin route (the fault), then restores them.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import {
  createStaleCache,
  currentContext,
  defineContract,
  defineService,
  implement,
  isUpstreamError,
  ProblemError,
  route,
  runWithContext,
  withFallback,
  type Client,
  type ResilienceOptions,
} from '@simplebank/chassis';

export const STATS_PATH = '/__bench/stats';

/** Worst event-loop delay (ms) since the previous call: shows whether a process itself was starved or blocked. */
function loopDelayMeter(): () => number {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  return () => {
    const worst = h.max / 1e6;
    h.reset();
    return Math.round(worst);
  };
}
export const CAPACITY_PATH = '/__bench/capacity';

const customer = z.string().regex(/^c\d{1,6}$/);
const symbol = z.string().regex(/^S\d{1,6}$/);
const position = z.object({ symbol, quantity: z.number().int() });
/** Money is never a float: a price travels as a decimal string. */
const price = z.object({ symbol, price: z.string(), asOf: z.number().int() });

export const holdingsContract = defineContract({
  service: 'holdings',
  routes: {
    holdings: route({
      method: 'GET',
      path: '/holdings/:customer',
      params: z.object({ customer }),
      responses: { 200: z.object({ customer, positions: z.array(position) }) },
    }),
  },
});

export const pricesContract = defineContract({
  service: 'prices',
  routes: {
    price: route({ method: 'GET', path: '/prices/:symbol', params: z.object({ symbol }), responses: { 200: price } }),
  },
});

/** The B part of an answer: fresh from B, stale from the edge's cache (with its age), or missing. */
export const priceView = z.discriminatedUnion('status', [
  price.extend({ status: z.literal('fresh') }),
  price.extend({ status: z.literal('stale'), ageMs: z.number() }),
  z.object({ status: z.literal('unavailable'), symbol }),
]);
export type PriceView = z.infer<typeof priceView>;

export const edgeContract = defineContract({
  service: 'edge',
  routes: {
    screen: route({
      method: 'GET',
      path: '/screen/:customer/:symbol',
      params: z.object({ customer, symbol }),
      responses: { 200: z.object({ customer, positions: z.array(position), price: priceView }) },
    }),
  },
});

// ── A: holdings, healthy: fixed ~5 ms per request, no concurrency limit ───────────────────────────────────

export const holdingsService = defineService({
  contract: holdingsContract,
  defaultPort: 0,
  config: { A_SERVICE_MS: z.coerce.number().int().min(0).default(5) },
  setup: (ctx) => ({
    routes: implement(holdingsContract, {
      holdings: async ({ params }) => {
        await sleep(ctx.config.A_SERVICE_MS);
        const n = Number(params.customer.slice(1));
        return { status: 200, body: { customer: params.customer, positions: [{ symbol: `S${n % 1000}`, quantity: 10 + (n % 7) }, { symbol: `S${(n * 7) % 1000}`, quantity: 3 }] } };
      },
    }),
  }),
});

// ── B: prices, limited capacity: `slots` workers, `serviceMs` each, unbounded FIFO queue ─────────────────

export interface PricesStats {
  slots: number;
  /** Requests inside the handler: being served or queued for a slot. */
  inFlight: number;
  queued: number;
  busy: number;
  received: number;
  served: number;
  /** Refused when their slot came up: the caller's deadline (x-deadline-ms) had passed while they queued. */
  expired: number;
  loopDelayMs: number;
}

export const pricesService = defineService({
  contract: pricesContract,
  defaultPort: 0,
  config: {
    B_SLOTS: z.coerce.number().int().min(1).default(8),
    B_SERVICE_MS: z.coerce.number().int().min(1).default(20),
  },
  setup: (ctx) => {
    const serviceMs = ctx.config.B_SERVICE_MS;
    let slots = ctx.config.B_SLOTS;
    let busy = 0;
    const queue: (() => void)[] = [];
    const stats = { received: 0, served: 0, expired: 0 };
    const loopDelay = loopDelayMeter();
    const release = () => {
      busy--;
      // A lowered capacity takes effect as running requests finish.
      while (busy < slots && queue.length > 0) {
        busy++;
        queue.shift()!();
      }
    };
    const acquire = (): Promise<void> | undefined => {
      if (busy < slots && queue.length === 0) {
        busy++;
        return undefined;
      }
      return new Promise<void>((resolve) => queue.push(resolve));
    };
    return {
      routes: implement(pricesContract, {
        price: async ({ params }, request) => {
          stats.received++;
          const waiting = acquire();
          if (waiting) await waiting;
          try {
            // Like the chassis server does on arrival, refuse work whose caller has already given up. Only
            // callers that send a deadline (x-deadline-ms) benefit: without one, B cannot know.
            if (request.deadline !== undefined && request.deadline <= Date.now()) {
              stats.expired++;
              throw new ProblemError(504, 'deadline_exceeded', 'the caller\'s deadline passed while this request queued');
            }
            await sleep(serviceMs);
            stats.served++;
            const n = Number(params.symbol.slice(1));
            return { status: 200, body: { symbol: params.symbol, price: `${100 + (n % 50)}.${String(n % 100).padStart(2, '0')}`, asOf: Date.now() } };
          } finally {
            release();
          }
        },
      }),
      extend: (app) => {
        app.get(STATS_PATH, async (): Promise<PricesStats> => ({ slots, inFlight: busy + queue.length, queued: queue.length, busy, ...stats, loopDelayMs: loopDelay() }));
        app.post<{ Body: { slots: number } }>(CAPACITY_PATH, async (req) => {
          const next = Number(req.body.slots);
          if (!Number.isInteger(next) || next < 1) throw new ProblemError(400, 'bad_request', 'slots must be a positive integer');
          slots = next;
          while (busy < slots && queue.length > 0) {
            busy++;
            queue.shift()!();
          }
          return { slots };
        });
      },
    };
  },
});

// ── edge: the read path that fans out ──────────────────────────────────────────────────────────────────

/**
 * off: `resilience: false`, no load shedding (LOAD_SHED_ENABLED=false in every process of the run), naive retries;
 * on: the chassis' own pipeline per dependency, as startService wires it (defaults), and its server protection;
 * sized: on, with B's bulkhead sized to B's capacity.
 */
export type EdgeMode = 'off' | 'on' | 'sized';

/** The env of every process of a run: the off run is the unprotected baseline, so no server protection either. */
export const runEnv = (mode: EdgeMode): Record<string, string> => (mode === 'off' ? { LOAD_SHED_ENABLED: 'false' } : {});

export interface EdgeStats {
  mode: EdgeMode;
  /** Screen requests in progress at the edge. */
  inFlight: number;
  /** Calls to B (prices) started by the edge and not settled: queued in its client, in flight, or between retries. */
  pricesPending: number;
  rssMb: number;
  loopDelayMs: number;
  /** Longest screen handler run that ended since the previous read (server-side latency). */
  handlerMaxMs: number;
  breaker?: string;
  bulkhead?: { inUse: number; queued: number; rejected: number };
  retries?: number;
  budgetExhausted?: number;
}

/** The edge's knobs for the "on" run; the off run uses none of them. */
export const EDGE_ON = {
  /** The whole screen must answer within this (its SLO is 1 s; leave room for the edge itself). */
  deadlineMs: 800,
  /** Per-attempt timeout on each dependency call (B's normal p99 is ~40 ms): the pipeline's `attemptTimeoutMs`. */
  callTimeoutMs: 250,
} as const;

/** The on runs' options over the chassis defaults, per dependency, as the edge's definition passes them (`resilience`). */
export const edgeResilience = (mode: 'on' | 'sized'): Record<'holdings' | 'prices', Partial<ResilienceOptions>> => ({
  holdings: { attemptTimeoutMs: EDGE_ON.callTimeoutMs },
  prices: { attemptTimeoutMs: EDGE_ON.callTimeoutMs, ...(mode === 'sized' ? EDGE_SIZED_PRICES : {}) },
});

/**
 * The `sized` variant: B's bulkhead sized from B's capacity instead of the default 64 + 64. Little's law: ~400 req/s
 * × ~40 ms acceptable time in B = 16 in flight; a short queue. Then calls that do go to B half-capacity finish within
 * the per-attempt timeout instead of all timing out behind a deep queue, and the excess is refused at once.
 */
export const EDGE_SIZED_PRICES = { bulkheadMaxConcurrent: 16, bulkheadMaxQueue: 16 } as const;

/** The off run's client behaviour, as in many real systems: long timeout, immediate retries on any error. */
export const EDGE_OFF = { callTimeoutMs: 5_000, attempts: 4 } as const;

async function naiveRetry<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= EDGE_OFF.attempts) throw err;
    }
  }
}

/** A failed required dependency is a 503 for the edge's caller (a bug stays a bug: rethrown as it is). */
const dependencyFailed = (err: unknown): unknown => (isUpstreamError(err) ? new ProblemError(503, 'dependency_failed', err.message) : err);

type EdgeClients = { holdings: Client<typeof holdingsContract>; prices: Client<typeof pricesContract> };

export function edgeService(mode: EdgeMode) {
  return defineService({
    contract: edgeContract,
    defaultPort: 0,
    dependencies: { holdings: holdingsContract, prices: pricesContract },
    // The chassis wires one pipeline per dependency (its defaults, these options over them, RESILIENCE_* env over
    // both); the off run has none.
    resilience: mode === 'off' ? false : edgeResilience(mode),
    setup: (ctx) => {
      const clients: EdgeClients = ctx.clients;
      const pricesPipeline = ctx.resilience.get('prices');
      let inFlight = 0;
      let pricesPending = 0;
      const loopDelay = loopDelayMeter();
      let handlerMaxMs = 0;
      // ttl 0: every request still asks B (so B sees the same load in both runs); the cache only answers, marked
      // stale, when B fails. Concurrent requests for one symbol share one call (1000 symbols: rare).
      const cache = createStaleCache<string, z.infer<typeof price>>({ ttlMs: 0, maxStaleMs: 300_000, maxEntries: 5_000 });

      const offScreen = async (customerId: string, sym: string) => {
        const [h, p] = await Promise.all([
          naiveRetry(() => clients.holdings.holdings({ params: { customer: customerId }, timeoutMs: EDGE_OFF.callTimeoutMs })),
          (async () => {
            pricesPending++;
            try {
              return await naiveRetry(() => clients.prices.price({ params: { symbol: sym }, timeoutMs: EDGE_OFF.callTimeoutMs }));
            } finally {
              pricesPending--;
            }
          })(),
        ]);
        return { customer: customerId, positions: h.body.positions, price: { status: 'fresh' as const, ...p.body } };
      };

      const onScreen = async (customerId: string, sym: string) => {
        const work = currentContext()!;
        const deadline = Math.min(work.deadline ?? Infinity, Date.now() + EDGE_ON.deadlineMs);
        return runWithContext({ ...work, deadline }, async () => {
          const pricePart = (async (): Promise<PriceView> => {
            pricesPending++;
            try {
              return await withFallback(
                async (): Promise<PriceView> => {
                  const got = await cache.get(sym, async () => (await clients.prices.price({ params: { symbol: sym } })).body);
                  return got.stale ? { status: 'stale', ...got.value, ageMs: got.ageMs } : { status: 'fresh', ...got.value };
                },
                (): PriceView => ({ status: 'unavailable', symbol: sym }),
              );
            } finally {
              pricesPending--;
            }
          })();
          const [h, p] = await Promise.all([clients.holdings.holdings({ params: { customer: customerId } }), pricePart]);
          return { customer: customerId, positions: h.body.positions, price: p };
        });
      };

      return {
        routes: implement(edgeContract, {
          screen: async ({ params }) => {
            inFlight++;
            const began = Date.now();
            try {
              const body = await (mode === 'off' ? offScreen : onScreen)(params.customer, params.symbol);
              return { status: 200, body };
            } catch (err) {
              throw dependencyFailed(err);
            } finally {
              inFlight--;
              handlerMaxMs = Math.max(handlerMaxMs, Date.now() - began);
            }
          },
        }),
        extend: (app) => {
          app.get(STATS_PATH, async (): Promise<EdgeStats> => {
            const p = pricesPipeline?.stats();
            const worst = handlerMaxMs;
            handlerMaxMs = 0;
            return {
              mode,
              inFlight,
              pricesPending,
              rssMb: Math.round(process.memoryUsage.rss() / 1048576),
              loopDelayMs: loopDelay(),
              handlerMaxMs: worst,
              ...(p
                ? {
                    breaker: p.breaker.status,
                    bulkhead: { inUse: p.bulkhead.inUse, queued: p.bulkhead.queued, rejected: p.bulkhead.rejected },
                    retries: p.retry.retries,
                    budgetExhausted: p.retry.budgetExhausted,
                  }
                : {}),
            };
          });
        },
      };
    },
  });
}
