// The resilience pipeline and server protection as startService wires them: two real services over HTTP, an edge
// calling a prices service. No fakes: faults are injected through the admin API, as an operator would.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { createClient, defineContract, defineService, implement, isUpstreamError, ProblemError, route, startService, type RunningService } from '../../src/index.ts';

const TOKEN = 'test-service-token-0123456789';

const pricesContract = defineContract({
  service: 'prices',
  routes: {
    getPrice: route({ method: 'GET', path: '/prices/:symbol', params: z.object({ symbol: z.string() }), responses: { 200: z.object({ symbol: z.string(), price: z.string() }) } }),
    busy: route({ method: 'GET', path: '/busy', responses: { 200: z.object({}) } }),
  },
});

let served = 0;
const prices = defineService({
  contract: pricesContract,
  defaultPort: 0,
  setup: () => ({
    routes: implement(pricesContract, {
      getPrice: async ({ params }) => {
        served++;
        return { status: 200 as const, body: { symbol: params.symbol, price: '10.00' } };
      },
      busy: async () => {
        throw new ProblemError(429, 'rate_limited', 'slow down', {}, { 'retry-after': '2' });
      },
    }),
  }),
});

const edgeContract = defineContract({
  service: 'edge',
  routes: {
    price: route({ method: 'GET', path: '/price/:symbol', params: z.object({ symbol: z.string() }), responses: { 200: z.object({ price: z.string() }) } }),
  },
});

const edge = defineService({
  contract: edgeContract,
  defaultPort: 0,
  dependencies: { prices: pricesContract },
  // Code sets these; the env below overrides retryAttempts.
  resilience: { prices: { retryAttempts: 4, breakerMinThroughput: 6, breakerHalfOpenAfterMs: 60_000 } },
  requestDeadlineMs: 30_000,
  setup: (ctx) => ({
    routes: implement(edgeContract, {
      // Lets a failed call through: the chassis maps it.
      price: async ({ params }) => ({ status: 200, body: { price: (await ctx.clients.prices.getPrice({ params })).body.price } }),
    }),
  }),
});

/** What the tests use of a running service. */
type Running = Pick<RunningService, 'url' | 'stop'> & { context: Pick<RunningService['context'], 'resilience'> };
let pricesService: Running;
let edgeService: Running;

before(async () => {
  pricesService = await startService(prices, { PORT: '0', SERVICE_TOKEN: TOKEN, LOG_LEVEL: 'silent', FAULTS_ENABLED: 'true' });
  edgeService = await startService(edge, {
    PORT: '0',
    SERVICE_TOKEN: TOKEN,
    LOG_LEVEL: 'silent',
    FAULTS_ENABLED: 'true',
    PRICES_URL: pricesService.url,
    RESILIENCE_PRICES_RETRY_ATTEMPTS: '2',
    // No retry budget floor, so that what the budget allows is exactly its ratio.
    RESILIENCE_PRICES_BUDGET_MIN_RETRIES_PER_SECOND: '0',
    // The env caps the definition's deadline.
    REQUEST_DEADLINE_MS: '1500',
    // Event-loop shedding off: a CPU-starved test process can lag, and these tests are not about that.
    LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
  });
});

after(async () => {
  await edgeService?.stop();
  await pricesService?.stop();
});

const admin = (service: Running, path: string, init: RequestInit = {}) =>
  fetch(`${service.url}${path}`, { ...init, headers: { 'x-service-token': TOKEN, ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers } });

async function setFault(service: Running, id: string, spec: unknown): Promise<void> {
  const res = await admin(service, `/admin/faults/${id}`, { method: 'PUT', body: JSON.stringify(spec) });
  assert.equal(res.status, 200, await res.text());
}

const clearFaults = async (service: Running) => assert.equal((await admin(service, '/admin/faults', { method: 'DELETE' })).status, 200);

async function get(url: string): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(20_000) });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

const breakerOf = async () => {
  const res = await admin(edgeService, '/admin/resilience');
  assert.equal(res.status, 200);
  const body = (await res.json()) as { dependencies: Record<string, { breaker: { status: string; transitions: number }; budget: { attempts: number; retries: number } }> };
  return body.dependencies.prices!;
};

test('one pipeline per dependency: chassis defaults, then the definition, then env', () => {
  const pipeline = edgeService.context.resilience.get('prices')!;
  assert.equal(pipeline.options.retryAttempts, 2, 'env wins over the definition');
  assert.equal(pipeline.options.breakerMinThroughput, 6, 'the definition wins over the default');
  assert.equal(pipeline.options.bulkheadMaxConcurrent, 64, 'the default');
  assert.equal(pricesService.context.resilience.size, 0);
});

test('the admin routes need the service credential', async () => {
  assert.equal((await fetch(`${edgeService.url}/admin/resilience`)).status, 401);
  assert.equal((await fetch(`${edgeService.url}/admin/faults`)).status, 401);
  assert.equal((await admin(edgeService, '/admin/resilience/nobody/trip', { method: 'POST' })).status, 404);
});

test('a dependency answering 503 → the caller answers 503 upstream_unavailable with Retry-After; retries stay within the budget', async () => {
  await setFault(pricesService, 'down', { target: { direction: 'incoming', route: 'GET /prices/:symbol' }, errorRate: 1 });
  try {
    const before = await breakerOf();
    const res = await get(`${edgeService.url}/price/ACME`);
    assert.equal(res.status, 503);
    assert.equal(res.body.code, 'upstream_unavailable');
    assert.equal(res.headers.get('retry-after'), '1');
    assert.ok(!String(res.body.detail).includes('prices'), 'which dependency failed is not told');
    const afterCall = await breakerOf();
    assert.equal(afterCall.budget.attempts - before.budget.attempts, 1);
    // Without a floor, the budget's 20 % of one attempt is no retry at all.
    assert.equal(afterCall.budget.retries - before.budget.retries, 0);
  } finally {
    await clearFaults(pricesService);
  }
});

test('a dependency slower than the deadline → 504 upstream_timeout, not a hang; the default deadline applies', async () => {
  await setFault(pricesService, 'slow', { target: { direction: 'incoming', route: 'GET /prices/:symbol' }, latencyMs: 20_000 });
  try {
    // No x-deadline-ms: the edge's REQUEST_DEADLINE_MS (1.5 s) bounds the call (the fetch gives up after 20 s).
    const res = await get(`${edgeService.url}/price/ACME`);
    assert.equal(res.status, 504);
    assert.equal(res.body.code, 'upstream_timeout');
  } finally {
    await clearFaults(pricesService);
  }
  const ok = await get(`${edgeService.url}/price/ACME`);
  assert.equal(ok.status, 200);
});

test('an outgoing fault fails calls before they reach the dependency; the breaker opens, rejects, and an operator resets it', async () => {
  const servedBefore = served;
  await setFault(edgeService, 'prices-down', { target: { direction: 'outgoing', dependency: 'prices' }, errorRate: 1 });
  try {
    for (let i = 0; i < 10; i++) assert.equal((await get(`${edgeService.url}/price/ACME`)).status, 503);
    assert.equal(served, servedBefore, 'nothing reached the dependency');
    const breaker = await breakerOf();
    assert.equal(breaker.breaker.status, 'open');
    // Open: rejected at once; the answer's Retry-After is the time until the probe (60 s here).
    const rejected = await get(`${edgeService.url}/price/ACME`);
    assert.equal(rejected.status, 503);
    assert.ok(Number(rejected.headers.get('retry-after')) > 30, rejected.headers.get('retry-after') ?? 'none');
  } finally {
    await clearFaults(edgeService);
  }
  const reset = await admin(edgeService, '/admin/resilience/prices/reset', { method: 'POST' });
  assert.equal(reset.status, 200);
  assert.equal(((await reset.json()) as { breaker: { status: string } }).breaker.status, 'closed');
  assert.equal((await get(`${edgeService.url}/price/ACME`)).status, 200);

  const trip = await admin(edgeService, '/admin/resilience/prices/trip', { method: 'POST' });
  assert.equal(((await trip.json()) as { breaker: { status: string } }).breaker.status, 'isolated');
  assert.equal((await get(`${edgeService.url}/price/ACME`)).status, 503);
  await admin(edgeService, '/admin/resilience/prices/reset', { method: 'POST' });
  assert.equal((await get(`${edgeService.url}/price/ACME`)).status, 200);
});

test("a 429 or 503 answer's Retry-After is on the UpstreamError", async () => {
  const client = createClient(pricesContract, { baseUrl: pricesService.url });
  try {
    const err = await client.busy({}).catch((e: unknown) => e);
    assert.ok(isUpstreamError(err));
    assert.equal(err.status, 429);
    assert.equal(err.retryAfterMs, 2_000);
  } finally {
    await client.close();
  }
});

test('every service sheds load and says so in its readiness and admin stats', async () => {
  const ready = await get(`${pricesService.url}/health/ready`);
  assert.equal(ready.status, 200);
  assert.equal((ready.body.checks as Record<string, string>).load, 'ok');
  const stats = (await (await admin(edgeService, '/admin/resilience')).json()) as { protection: { loadShedding: { maxInFlight: number; inFlight: number } } };
  assert.equal(stats.protection.loadShedding.maxInFlight, 256);
});

test('resilience: false leaves the clients without a chassis pipeline (an unprotected baseline)', async () => {
  const bare = await startService({ ...edge, resilience: false }, { PORT: '0', SERVICE_TOKEN: TOKEN, LOG_LEVEL: 'silent', PRICES_URL: pricesService.url });
  try {
    assert.equal(bare.context.resilience.size, 0);
    assert.equal((await get(`${bare.url}/price/ACME`)).status, 200);
  } finally {
    await bare.stop();
  }
});

test('resilience: false still takes the attempt timeout from the env: it belongs to the client, not to the policies', async () => {
  const env = { PORT: '0', SERVICE_TOKEN: TOKEN, LOG_LEVEL: 'silent', PRICES_URL: pricesService.url };
  const bare = await startService({ ...edge, resilience: false }, { ...env, RESILIENCE_PRICES_ATTEMPT_TIMEOUT_MS: '200' });
  await setFault(pricesService, 'slow', { target: { direction: 'incoming', route: 'GET /prices/:symbol' }, latencyMs: 3_000 });
  try {
    // The default attempt timeout (5 s) would wait out the 3 s of latency and answer 200.
    const res = await get(`${bare.url}/price/ACME`);
    assert.equal(res.status, 504);
    assert.equal(res.body.code, 'upstream_timeout');
  } finally {
    await clearFaults(pricesService);
    await bare.stop();
  }
  await assert.rejects(startService({ ...edge, resilience: false }, { ...env, RESILIENCE_ATTEMPT_TIMEOUT_MS: 'soon' }), /RESILIENCE_ATTEMPT_TIMEOUT_MS: must be a number/);
});

test('fault injection is off unless enabled', async () => {
  const plain = await startService(prices, { PORT: '0', SERVICE_TOKEN: TOKEN, LOG_LEVEL: 'silent' });
  try {
    assert.equal((await admin(plain, '/admin/faults')).status, 404);
    assert.equal((await admin(plain, '/admin/resilience')).status, 200);
  } finally {
    await plain.stop();
  }
});
