import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifyInstance } from 'fastify';
import { createServiceMetrics, httpServerMetrics, metricsRoute, parseExposition, sampleValue, type Exposition, type ServiceMetrics } from '../src/index.ts';

// The HTTP server metrics plugin on a bare fastify app, over real HTTP.

let app: FastifyInstance;
let metrics: ServiceMetrics;
let base: string;
let release: (() => void) | undefined;

before(async () => {
  metrics = createServiceMetrics({ defaultMetrics: false });
  app = Fastify();
  httpServerMetrics(app, metrics, { rateLimitGroup: (key) => (key === 'POST /orders' ? 'place-order' : undefined) });
  app.get('/items/:id', async (request) => ({ id: (request.params as { id: string }).id }));
  app.post('/orders', async (_request, reply) => reply.status(429).send({ code: 'rate_limited' }));
  app.get('/boom', async () => {
    throw new Error('boom');
  });
  app.get('/held', () => new Promise((resolve) => (release = () => resolve({ ok: true }))));
  // A reply that bypasses onSend (as server-sent events do), with an onResponse hook like the chassis' non-contract routes.
  app.get('/stream', { onResponse: (_request, _reply, done) => done() }, (_request, reply) => {
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/plain' });
    reply.raw.end('data');
  });
  app.get('/health/live', async () => ({ status: 'ok' }));
  metricsRoute(app, metrics);
  base = await app.listen({ port: 0, host: '127.0.0.1' });
});

after(async () => {
  await app.close();
});

async function scrape(): Promise<{ text: string; exposition: Exposition; contentType: string | null }> {
  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  const text = await res.text();
  return { text, exposition: parseExposition(text), contentType: res.headers.get('content-type') };
}

const count = (e: Exposition, labels: Record<string, string>) => sampleValue(e, 'http_server_request_duration_seconds_count', labels);

test('requests are counted by route template, method and status class; raw paths and ids never become labels', async () => {
  for (const id of ['1', '2', 'f47ac10b-58cc-4372-a567-0e02b2c3d479']) assert.equal((await fetch(`${base}/items/${id}`)).status, 200);
  assert.equal((await fetch(`${base}/boom`)).status, 500);
  for (const path of ['/nope', '/nope/123', '/items']) assert.equal((await fetch(`${base}${path}`)).status, 404);

  const { text, exposition, contentType } = await scrape();
  assert.equal(contentType, 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(count(exposition, { method: 'GET', route: '/items/:id', status_class: '2xx' }), 3);
  assert.equal(count(exposition, { method: 'GET', route: '/boom', status_class: '5xx' }), 1);
  assert.equal(count(exposition, { route: 'unmatched', status_class: '4xx' }), 3);
  // Buckets are cumulative and end with +Inf = count.
  assert.equal(sampleValue(exposition, 'http_server_request_duration_seconds_bucket', { route: '/items/:id', le: '+Inf' }), 3);
  const routes = new Set(exposition.samples.filter((s) => s.name.startsWith('http_server_request_duration_seconds')).map((s) => s.labels.route));
  assert.deepEqual([...routes].sort(), ['/boom', '/items/:id', 'unmatched']);
  assert.doesNotMatch(text, /f47ac10b|\/nope|\/items\/1"/);
  assert.equal(exposition.families.get('http_server_request_duration_seconds')?.type, 'histogram');
});

test('/metrics and health routes are left out of the route metrics and of the in-flight gauge', async () => {
  await fetch(`${base}/health/live`);
  await scrape();
  const { exposition } = await scrape();
  assert.equal(count(exposition, { route: '/metrics' }), 0);
  assert.equal(count(exposition, { route: '/health/live' }), 0);
  // The scrape itself is not in flight.
  assert.equal(sampleValue(exposition, 'http_server_requests_in_flight'), 0);
});

test('in-flight counts requests being served, and each one leaves it once answered', async () => {
  const held = fetch(`${base}/held`);
  await waitFor(async () => sampleValue((await scrape()).exposition, 'http_server_requests_in_flight') === 1);
  release!();
  assert.equal((await held).status, 200);
  assert.equal(sampleValue((await scrape()).exposition, 'http_server_requests_in_flight'), 0);
});

test('a hijacked reply is recorded when it finishes and leaves the in-flight gauge', async () => {
  const res = await fetch(`${base}/stream`);
  assert.equal(await res.text(), 'data');
  await waitFor(async () => count((await scrape()).exposition, { route: '/stream', status_class: '2xx' }) === 1);
  assert.equal(sampleValue((await scrape()).exposition, 'http_server_requests_in_flight'), 0);
});

test('429s on a rate-limited route count for its group, which is exported at 0 before the first one', async () => {
  assert.equal(sampleValue((await scrape()).exposition, 'http_server_rate_limited_total', { group: 'place-order' }), 0);
  assert.ok((await scrape()).exposition.samples.some((s) => s.name === 'http_server_rate_limited_total' && s.labels.group === 'place-order'));
  for (let i = 0; i < 2; i++) assert.equal((await fetch(`${base}/orders`, { method: 'POST' })).status, 429);
  const { exposition } = await scrape();
  assert.equal(sampleValue(exposition, 'http_server_rate_limited_total', { group: 'place-order' }), 2);
  assert.equal(count(exposition, { method: 'POST', route: '/orders', status_class: '4xx' }), 2);
});

test('label sets beyond the bound fold into one "other" series, and the owner is told once', async () => {
  const overflowed: string[] = [];
  const m = createServiceMetrics({ defaultMetrics: false, maxSeries: 3, onOverflow: (name) => overflowed.push(name) });
  const counter = m.counter<'customer'>({ name: 'test_unbounded_total', help: 'a label fed from input (a bug)', labelNames: ['customer'] });
  for (let i = 0; i < 10; i++) counter.inc({ customer: `c${i}` });
  const exposition = parseExposition((await m.scrape()).body);
  const series = exposition.samples.filter((s) => s.name === 'test_unbounded_total');
  assert.equal(series.length, 4);
  assert.equal(sampleValue(exposition, 'test_unbounded_total', { customer: 'other' }), 7);
  assert.deepEqual(overflowed, ['test_unbounded_total']);
});

test('declaring is get-or-create: the same metric again is the same object, a clash throws', () => {
  const m = createServiceMetrics({ defaultMetrics: false });
  const a = m.counter<'status'>({ name: 'test_orders_total', help: 'x', labelNames: ['status'] });
  assert.equal(m.counter<'status'>({ name: 'test_orders_total', help: 'x', labelNames: ['status'] }), a);
  assert.throws(() => m.counter<'reason'>({ name: 'test_orders_total', help: 'x', labelNames: ['reason'] }), /already declared/);
  assert.throws(() => m.histogram({ name: 'test_orders_total', help: 'x', buckets: [1] }), /already declared/);
  assert.throws(() => m.counter({ name: 'test_orders', help: 'x' }), /_total/);
  assert.throws(() => m.counter<'bad-label'>({ name: 'test_x_total', help: 'x', labelNames: ['bad-label'] }), /label name/);
  assert.throws(() => m.histogram<'le'>({ name: 'test_h_seconds', help: 'x', labelNames: ['le'], buckets: [1] }), /reserved/);
  assert.throws(() => m.histogram({ name: 'test_h2_seconds', help: 'x', buckets: [1, 0.5] }), /ascending/);
});

test("each service's registry is its own: two in one process don't collide, and process metrics are there", async () => {
  const one = createServiceMetrics();
  const two = createServiceMetrics();
  one.counter({ name: 'test_same_total', help: 'x' }).inc({}, 2);
  two.counter({ name: 'test_same_total', help: 'x' }).inc({});
  const e1 = parseExposition((await one.scrape()).body);
  const e2 = parseExposition((await two.scrape()).body);
  assert.equal(sampleValue(e1, 'test_same_total'), 2);
  assert.equal(sampleValue(e2, 'test_same_total'), 1);
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_gc_duration_seconds', 'nodejs_active_handles']) {
    assert.ok(e1.families.has(name), `${name} is exported`);
  }
});

async function waitFor(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail('condition not reached');
}
