// Traces across two real services in this process: HTTP server and client spans, a transaction with its outbox
// write, the relay's publish and the consumer on the other side, all in the caller's trace; the admin endpoint
// that serves them; sampling and the off switch. Real PostgreSQL, pg-boss bus, real HTTP.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { trace } from '@opentelemetry/api';
import { z } from 'zod';
import {
  ConfigError,
  createClient,
  currentContext,
  defineContract,
  defineService,
  event,
  implement,
  route,
  startService,
  type RunningService,
  type SpanJson,
} from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from '../src/testing/postgres.ts';
import { cleanupStack, waitFor } from './messaging/helpers.ts';

const TOKEN = 'trace-test-service-token-0123456789';

const betaContract = defineContract({
  service: 'beta',
  routes: {
    thing: route({ method: 'GET', path: '/things/:id', params: z.object({ id: z.string() }), responses: { 200: z.object({ id: z.string(), traceId: z.string() }) } }),
  },
});

const alphaContract = defineContract({
  service: 'alpha',
  routes: {
    work: route({ method: 'POST', path: '/work', body: z.object({ id: z.string() }), responses: { 202: z.object({ traceId: z.string() }) } }),
    broken: route({ method: 'GET', path: '/broken', responses: { 200: z.object({}) } }),
  },
  events: {
    Done: event('alpha.Done.v1', z.object({ id: z.string() })),
  },
});

const alpha = defineService({
  contract: alphaContract,
  defaultPort: 0,
  bus: true,
  migrations: new URL('./fixtures/migrations/', import.meta.url),
  dependencies: { beta: betaContract },
  setup: (ctx) => ({
    routes: implement(alphaContract, {
      work: async ({ body }) => {
        await ctx.clients.beta.thing({ params: { id: body.id } });
        await ctx.db.tx(async (tx) => {
          await tx.query('SELECT 1 AS one');
          await ctx.publish(tx, alphaContract.events.Done, { subject: body.id, data: { id: body.id } });
        });
        // A single query outside a transaction gets a span of its own.
        await ctx.db.one('SELECT count(*) AS n FROM outbox');
        return { status: 202, body: { traceId: currentContext()!.traceId } };
      },
      broken: async () => {
        throw new Error('kaput');
      },
    }),
  }),
});

const handled: { id: string; traceId: string; activeSpanId: string | undefined }[] = [];

const beta = defineService({
  contract: betaContract,
  defaultPort: 0,
  bus: true,
  migrations: new URL('./fixtures/migrations/', import.meta.url),
  setup: () => ({
    routes: implement(betaContract, {
      thing: async ({ params }) => ({ status: 200 as const, body: { id: params.id, traceId: currentContext()!.traceId } }),
    }),
    subscriptions: [
      {
        name: 'beta.on-done',
        events: [alphaContract.events.Done],
        async handle(ev, tx) {
          await tx.query('SELECT 2 AS two');
          // The OpenTelemetry API sees the chassis' active span.
          handled.push({ id: (ev.data as { id: string }).id, traceId: currentContext()!.traceId, activeSpanId: trace.getActiveSpan()?.spanContext().spanId });
        },
      },
    ],
  }),
});

const cleanup = cleanupStack();
let alphaSvc: RunningService;
let betaSvc: RunningService;
let bus: TestDatabase;

async function startPair(extraEnv: Record<string, string> = {}): Promise<{ alpha: RunningService; beta: RunningService }> {
  const [alphaDb, betaDb] = await Promise.all([createTestDatabase('trace_alpha'), createTestDatabase('trace_beta')]);
  cleanup.add(() => alphaDb.drop());
  cleanup.add(() => betaDb.drop());
  const base = { PORT: '0', SERVICE_TOKEN: TOKEN, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', BUS_URL: bus.url, ...extraEnv };
  const b = (await startService(beta, { ...base, DATABASE_URL: betaDb.url })) as unknown as RunningService;
  cleanup.add(() => b.stop());
  const a = (await startService(alpha, { ...base, DATABASE_URL: alphaDb.url, BETA_URL: b.url })) as unknown as RunningService;
  cleanup.add(() => a.stop());
  return { alpha: a, beta: b };
}

before(async () => {
  bus = await createTestDatabase('trace_bus');
  cleanup.add(() => bus.drop());
  ({ alpha: alphaSvc, beta: betaSvc } = await startPair());
});

after(() => cleanup.run());

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
let counter = 0;
const traceIdFor = () => `${TRACE_ID.slice(0, 24)}${(++counter).toString(16).padStart(8, '0')}`;

async function spansOf(svc: RunningService, traceId: string, token = TOKEN): Promise<{ status: number; body: { spans: SpanJson[]; code?: string } }> {
  const res = await fetch(`${svc.url}/admin/traces/${traceId}`, { headers: { 'x-service-token': token } });
  return { status: res.status, body: (await res.json()) as { spans: SpanJson[]; code?: string } };
}

async function postWork(svc: RunningService, id: string, traceparent: string): Promise<Response> {
  return fetch(`${svc.url}/work`, { method: 'POST', headers: { 'content-type': 'application/json', traceparent }, body: JSON.stringify({ id }) });
}

const one = (spans: SpanJson[], name: string): SpanJson => {
  const found = spans.filter((s) => s.name === name);
  assert.equal(found.length, 1, `one span named ${name} in ${spans.map((s) => s.name).join(', ')}`);
  return found[0]!;
};

test('a request, its calls, its transaction and the event it causes are one trace across both services', async () => {
  const traceId = traceIdFor();
  const res = await postWork(alphaSvc, 'item-1', `00-${traceId}-${CALLER_SPAN}-01`);
  assert.equal(res.status, 202);
  assert.equal(((await res.json()) as { traceId: string }).traceId, traceId);

  const done = await waitFor('beta to handle the event', () => handled.find((h) => h.id === 'item-1'));
  assert.equal(done.traceId, traceId, 'the consumer runs in the request\'s trace');

  const alphaSpans = await waitFor('alpha\'s publish span', async () => {
    const { body } = await spansOf(alphaSvc, traceId);
    return body.spans.some((s) => s.name === 'publish alpha.Done.v1') ? body.spans : undefined;
  });
  const betaSpans = await waitFor('beta\'s consumer span', async () => {
    const { body } = await spansOf(betaSvc, traceId);
    return body.spans.some((s) => s.name === 'consume alpha.Done.v1') && body.spans.some((s) => s.name === 'transaction') ? body.spans : undefined;
  });
  const all = [...alphaSpans, ...betaSpans];
  for (const s of all) assert.equal(s.traceId, traceId);

  const server = one(alphaSpans, 'POST /work');
  assert.equal(server.kind, 'server');
  assert.equal(server.parentSpanId, CALLER_SPAN);
  assert.equal(server.service, 'alpha');
  assert.equal(server.attributes['http.route'], '/work');
  assert.equal(server.attributes['http.response.status_code'], 202);

  const call = one(alphaSpans, 'beta.thing');
  assert.equal(call.kind, 'client');
  assert.equal(call.parentSpanId, server.spanId);
  const betaServer = one(betaSpans, 'GET /things/:id');
  assert.equal(betaServer.parentSpanId, call.spanId, 'the callee continues the client span');
  assert.equal(betaServer.service, 'beta');

  const tx = alphaSpans.find((s) => s.name === 'transaction' && s.parentSpanId === server.spanId)!;
  assert.ok(tx, 'the transaction is a child of the request');
  assert.equal(tx.attributes['db.transaction.statements'], 2, 'a query and the deferred outbox insert');
  assert.equal(tx.attributes['db.transaction.outcome'], 'commit');
  const query = one(alphaSpans, 'SELECT outbox');
  assert.equal(query.parentSpanId, server.spanId);
  assert.equal(query.attributes['db.system.name'], 'postgresql');
  assert.ok(!JSON.stringify(query).includes('count(*)'), 'no SQL text in spans');

  const outbox = one(alphaSpans, 'outbox alpha.Done.v1');
  assert.equal(outbox.kind, 'producer');
  assert.equal(outbox.parentSpanId, tx.spanId);
  const publish = one(alphaSpans, 'publish alpha.Done.v1');
  assert.equal(publish.parentSpanId, outbox.spanId);
  assert.equal(publish.attributes['messaging.message.id'], outbox.attributes['messaging.message.id']);

  const consume = one(betaSpans, 'consume alpha.Done.v1');
  assert.equal(consume.kind, 'consumer');
  assert.equal(consume.parentSpanId, outbox.spanId, 'the consumer continues the context in the envelope');
  assert.equal(consume.attributes['messaging.consumer.group.name'], 'beta.on-done');
  const betaTx = betaSpans.find((s) => s.name === 'transaction')!;
  assert.equal(betaTx.parentSpanId, consume.spanId);
  assert.equal(done.activeSpanId, betaTx.spanId, 'trace.getActiveSpan() is the chassis\' active span');
});

test('a failing handler marks its server span as an error, with the exception', async () => {
  const traceId = traceIdFor();
  const res = await fetch(`${alphaSvc.url}/broken`, { headers: { traceparent: `00-${traceId}-${CALLER_SPAN}-01` } });
  assert.equal(res.status, 500);
  const span = await waitFor('the failed request\'s span', async () => (await spansOf(alphaSvc, traceId)).body.spans.find((s) => s.name === 'GET /broken'));
  assert.equal(span.status, 'error');
  assert.equal(span.statusMessage, 'kaput');
  assert.equal(span.attributes['http.response.status_code'], 500);
  const exception = span.events.find((e) => e.name === 'exception');
  assert.equal(exception?.attributes?.['exception.message'], 'kaput');
});

test('a caller that did not sample its trace gets no spans, but its trace id still travels', async () => {
  const traceId = traceIdFor();
  const res = await postWork(alphaSvc, 'item-unsampled', `00-${traceId}-${CALLER_SPAN}-00`);
  assert.equal(res.status, 202);
  assert.equal(((await res.json()) as { traceId: string }).traceId, traceId);
  const done = await waitFor('beta to handle the event', () => handled.find((h) => h.id === 'item-unsampled'));
  assert.equal(done.traceId, traceId);
  assert.equal(done.activeSpanId, undefined);
  assert.deepEqual((await spansOf(alphaSvc, traceId)).body.spans, []);
  assert.deepEqual((await spansOf(betaSvc, traceId)).body.spans, []);
});

test('a call made outside any request or delivery (a background loop) starts no trace at the callee', async () => {
  const client = createClient(betaContract, { baseUrl: betaSvc.url });
  try {
    const { body } = await client.thing({ params: { id: 'background' } });
    assert.match(body.traceId, /^[0-9a-f]{32}$/);
    assert.deepEqual((await spansOf(betaSvc, body.traceId)).body.spans, []);
  } finally {
    await client.close();
  }
});

test('the admin endpoint wants the service credential and a trace id', async () => {
  assert.equal((await spansOf(alphaSvc, TRACE_ID, 'wrong-token-wrong-token')).status, 401);
  const res = await fetch(`${alphaSvc.url}/admin/traces/${TRACE_ID}`);
  assert.equal(res.status, 401);
  assert.equal((await spansOf(alphaSvc, 'not-a-trace-id')).status, 400);
  const recent = await fetch(`${alphaSvc.url}/admin/traces?limit=5`, { headers: { 'x-service-token': TOKEN } });
  assert.equal(recent.status, 200);
  const body = (await recent.json()) as { service: string; capacity: number; traces: { traceId: string; spans: number }[] };
  assert.equal(body.service, 'alpha');
  assert.equal(body.capacity, 1_000, 'the default TRACE_RING_SPANS');
  assert.ok(body.traces.length > 0 && body.traces.length <= 5);
});

test('OTEL_SDK_DISABLED=true: no spans, no ring, trace context still carried', async () => {
  const pair = await startPair({ OTEL_SDK_DISABLED: 'true' });
  assert.equal(pair.alpha.tracing, undefined);
  const traceId = traceIdFor();
  const res = await postWork(pair.alpha, 'item-off', `00-${traceId}-${CALLER_SPAN}-01`);
  assert.equal(((await res.json()) as { traceId: string }).traceId, traceId);
  const done = await waitFor('beta to handle the event', () => handled.find((h) => h.id === 'item-off'));
  assert.equal(done.traceId, traceId, 'the envelope still carries the trace');
  const { status, body } = await spansOf(pair.alpha, traceId);
  assert.equal(status, 404);
  assert.equal(body.code, 'traces_unavailable');
});

test('spans are exported over OTLP/HTTP when an endpoint is configured (flushed at stop)', async () => {
  const received: { url: string; body: string }[] = [];
  const collector: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ url: req.url ?? '', body });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  cleanup.add(() => new Promise<void>((resolve) => collector.close(() => resolve())));
  const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
  const pair = await startPair({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint });
  assert.equal(pair.alpha.tracing?.exportUrl, `${endpoint}/v1/traces`);
  const traceId = traceIdFor();
  assert.equal((await postWork(pair.alpha, 'item-otlp', `00-${traceId}-${CALLER_SPAN}-01`)).status, 202);
  await pair.alpha.stop();
  const exported = received.filter((r) => r.url === '/v1/traces').map((r) => JSON.parse(r.body) as { resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: { name: string; traceId: string }[] }[] }[] });
  const spans = exported.flatMap((e) => e.resourceSpans.filter((rs) => rs.resource.attributes.some((a) => a.key === 'service.name' && a.value.stringValue === 'alpha')).flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)));
  assert.ok(spans.some((s) => s.name === 'POST /work'), `alpha's server span was exported (got ${spans.map((s) => s.name).join(', ')})`);
});

test('sampler settings are validated at start-up', async () => {
  await assert.rejects(startService(alpha, { PORT: '0', SERVICE_TOKEN: TOKEN, BUS_URL: bus.url, DATABASE_URL: bus.url, BETA_URL: 'http://127.0.0.1:1', OTEL_TRACES_SAMPLER: 'sometimes' }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /OTEL_TRACES_SAMPLER/);
    return true;
  });
  await assert.rejects(startService(alpha, { PORT: '0', SERVICE_TOKEN: TOKEN, BUS_URL: bus.url, DATABASE_URL: bus.url, BETA_URL: 'http://127.0.0.1:1', OTEL_TRACES_SAMPLER_ARG: '1.5' }), /OTEL_TRACES_SAMPLER_ARG/);
});
