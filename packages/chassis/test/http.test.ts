import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import {
  ConfigError,
  createClient,
  currentContext,
  defineContract,
  defineService,
  implement,
  isUpstreamError,
  problems,
  route,
  startService,
  type RunningService,
} from '../src/index.ts';

const echoContract = defineContract({
  service: 'echo',
  routes: {
    getItem: route({
      method: 'GET',
      path: '/items/:id',
      params: z.object({ id: z.coerce.number().int().positive() }),
      query: z.object({ verbose: z.enum(['yes', 'no']).default('no') }),
      responses: { 200: z.object({ id: z.number(), verbose: z.boolean(), traceId: z.string(), requestId: z.string() }) },
    }),
    createItem: route({
      method: 'POST',
      path: '/items',
      body: z.object({ name: z.string().min(1), amount: z.string().regex(/^\d+\.\d{2}$/) }),
      responses: { 201: z.object({ name: z.string() }) },
    }),
    secret: route({ method: 'GET', path: '/admin/secret', auth: 'service', responses: { 200: z.object({ ok: z.boolean() }) } }),
    missing: route({ method: 'GET', path: '/missing', responses: { 200: z.object({}) } }),
    slowDeadline: route({ method: 'GET', path: '/deadline', responses: { 200: z.object({ remainingMs: z.number().nullable() }) } }),
  },
});

const TOKEN = 'test-service-token-0123456789';

const echo = defineService({
  contract: echoContract,
  defaultPort: 0,
  setup: (_ctx) => ({
    routes: implement(echoContract, {
      getItem: async ({ params, query }, req) => {
        const ctx = currentContext()!;
        return { status: 200, body: { id: params.id, verbose: query.verbose === 'yes', traceId: ctx.traceId, requestId: req.requestId } };
      },
      createItem: async ({ body }) => ({ status: 201, body: { name: body.name } }),
      secret: async () => ({ status: 200, body: { ok: true } }),
      missing: async () => {
        throw problems.notFound('thing');
      },
      slowDeadline: async (_input, req) => ({ status: 200, body: { remainingMs: req.deadline ? req.deadline - Date.now() : null } }),
    }),
  }),
});

let running: RunningService;
before(async () => {
  running = await startService(echo, { PORT: '0', SERVICE_TOKEN: TOKEN, LOG_LEVEL: 'silent' });
});
after(async () => {
  await running.stop();
});

test('validated input reaches the handler, coerced and defaulted', async () => {
  const res = await fetch(`${running.url}/items/42`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { id: number; verbose: boolean };
  assert.deepEqual({ id: body.id, verbose: body.verbose }, { id: 42, verbose: false });
});

test('invalid input is a 400 problem naming the field', async () => {
  const res = await fetch(`${running.url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x', amount: 1.5 }) });
  assert.equal(res.status, 400);
  assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
  const problem = (await res.json()) as { code: string; errors: { field: string }[]; status: number };
  assert.equal(problem.status, 400);
  assert.equal(problem.code, 'validation_failed');
  assert.deepEqual(problem.errors.map((e) => e.field), ['body.amount']);

  const badParam = await fetch(`${running.url}/items/abc`);
  assert.equal(badParam.status, 400);
  assert.equal(((await badParam.json()) as { errors: { field: string }[] }).errors[0]!.field, 'params.id');
});

test('malformed JSON is a 400 problem, not a crash', async () => {
  const res = await fetch(`${running.url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":' });
  assert.equal(res.status, 400);
  assert.equal(((await res.json()) as { code: string }).code, 'bad_request');
});

test('unknown routes and thrown problems are problem+json', async () => {
  const res = await fetch(`${running.url}/nope`);
  assert.equal(res.status, 404);
  assert.equal(((await res.json()) as { code: string }).code, 'route_not_found');
  const missing = await fetch(`${running.url}/missing`);
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { detail: string }).detail, 'thing not found');
});

test('service-only routes need the service credential', async () => {
  assert.equal((await fetch(`${running.url}/admin/secret`)).status, 401);
  assert.equal((await fetch(`${running.url}/admin/secret`, { headers: { 'x-service-token': 'wrong-token-wrong-token' } })).status, 401);
  assert.equal((await fetch(`${running.url}/admin/secret`, { headers: { 'x-service-token': TOKEN } })).status, 200);
});

test('health and OpenAPI 3.1 are served', async () => {
  assert.equal((await fetch(`${running.url}/health/live`)).status, 200);
  const ready = await fetch(`${running.url}/health/ready`);
  assert.equal(ready.status, 200);
  const doc = (await (await fetch(`${running.url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, Record<string, { operationId: string }>> };
  assert.equal(doc.openapi, '3.1.0');
  assert.equal(doc.paths['/items/{id}']!.get!.operationId, 'getItem');
  assert.ok(doc.paths['/items']!.post);
});

test('typed client: success, problems as UpstreamError, trace and request id propagated', async () => {
  const client = createClient(echoContract, { baseUrl: running.url, serviceToken: TOKEN });
  try {
    const res = await client.getItem({ params: { id: 7 }, query: { verbose: 'yes' } });
    assert.equal(res.status, 200);
    assert.equal(res.body.verbose, true);

    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const { runWithContext } = await import('../src/trace/context.ts');
    const traced = await runWithContext({ requestId: 'req-123', traceId, spanId: 'b7ad6b7169203331', sampled: true }, () =>
      client.getItem({ params: { id: 1 }, query: { verbose: 'no' } }),
    );
    assert.equal(traced.body.traceId, traceId);
    assert.equal(traced.body.requestId, 'req-123');

    await assert.rejects(client.missing({}), (err: unknown) => isUpstreamError(err) && err.status === 404 && err.code === 'not_found');
    assert.equal((await client.secret({})).body.ok, true);
  } finally {
    await client.close();
  }
});

test('a deadline travels as remaining time, and work past its deadline is refused', async () => {
  const client = createClient(echoContract, { baseUrl: running.url });
  const { runWithContext } = await import('../src/trace/context.ts');
  try {
    const res = await runWithContext({ requestId: 'r', traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), sampled: true, deadline: Date.now() + 5_000 }, () =>
      client.slowDeadline({}),
    );
    assert.ok(res.body.remainingMs !== null && res.body.remainingMs > 0 && res.body.remainingMs <= 5_000);
    const expired = await fetch(`${running.url}/deadline`, { headers: { 'x-deadline-ms': '0' } });
    assert.equal(expired.status, 504);
  } finally {
    await client.close();
  }
});

test('bad config stops start-up with a message naming the variable', async () => {
  await assert.rejects(startService(echo, { PORT: 'eighty', SERVICE_TOKEN: 'short' }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /PORT/);
    assert.match(err.message, /SERVICE_TOKEN/);
    return true;
  });
});
