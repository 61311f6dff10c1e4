// The typed client's observers (metrics plug in as observers, not policies) and client spans: what each sees of a
// call and its attempts, wherever it sits among the policies, and how a call's and a retry's spans end. A plain
// node:http server plays the dependency.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanStatusCode } from '@opentelemetry/api';
import { z } from 'zod';
import { createClient, defineContract, isUpstreamError, route, runWithContext, type CallInfo, type ClientObserver, type ClientPolicy } from '../src/index.ts';
import { createRetryPolicy } from '../src/resilience/index.ts';
import { SpanKind, startWork } from '../src/trace/spans.ts';
import { createTracing } from '../src/trace/tracing.ts';

const contract = defineContract({
  service: 'dep',
  routes: {
    ok: route({ method: 'GET', path: '/ok', responses: { 200: z.object({ ok: z.boolean() }) } }),
    /** 503 on the first request for an id, then 200. */
    flaky: route({ method: 'GET', path: '/flaky/:id', params: z.object({ id: z.string() }), responses: { 200: z.object({ ok: z.boolean() }) } }),
    missing: route({ method: 'GET', path: '/missing', responses: { 200: z.object({}) } }),
  },
});

const seen = new Set<string>();
let server: Server;
let baseUrl: string;

before(async () => {
  server = createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': status < 300 ? 'application/json' : 'application/problem+json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/ok') return send(200, { ok: true });
    if (req.url?.startsWith('/flaky/')) {
      if (seen.has(req.url)) return send(200, { ok: true });
      seen.add(req.url);
      return send(503, { type: 'about:blank', title: 'unavailable', status: 503, code: 'upstream_unavailable' });
    }
    return send(404, { type: 'about:blank', title: 'not found', status: 404, code: 'not_found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

interface Told {
  operation: string;
  state: unknown;
  failed: boolean;
  status: number | undefined;
}

/** An observer that records what it is told; `start` hands out a running number as its state. */
function recorder(): ClientObserver<number> & { started: number; told: Told[] } {
  const r = {
    started: 0,
    told: [] as Told[],
    start: (_call: CallInfo) => ++r.started,
    settled(call: CallInfo, state: number, failed: boolean, error: unknown) {
      r.told.push({ operation: call.operation, state, failed, status: isUpstreamError(error) ? error.status : undefined });
    },
  };
  return r;
}

const retry = () => createRetryPolicy({ maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1 });
let ids = 0;
const nextId = () => `id-${++ids}`;

test('an observer before every policy sees each call, one after every policy each attempt', async () => {
  const calls = recorder();
  const attempts = recorder();
  const client = createClient(contract, { baseUrl, policies: [calls, retry(), attempts] });
  try {
    assert.deepEqual((await client.flaky({ params: { id: nextId() } })).body, { ok: true });
    assert.deepEqual(calls.told, [{ operation: 'flaky', state: 1, failed: false, status: undefined }]);
    assert.deepEqual(attempts.told, [
      { operation: 'flaky', state: 1, failed: true, status: 503 },
      { operation: 'flaky', state: 2, failed: false, status: undefined },
    ]);

    await assert.rejects(client.missing({}), { status: 404 });
    assert.deepEqual(calls.told.at(-1), { operation: 'missing', state: 2, failed: true, status: 404 });
    assert.deepEqual(attempts.told.at(-1), { operation: 'missing', state: 3, failed: true, status: 404 });
    assert.equal(calls.started, 2);
    assert.equal(attempts.started, 3);
  } finally {
    await client.close();
  }
});

test('with no policies, every observer sees the call (its one attempt), also when it fails before the wire', async () => {
  const a = recorder();
  const b = recorder();
  const client = createClient(contract, { baseUrl, policies: [a, b] });
  try {
    await client.ok({});
    assert.deepEqual(a.told, [{ operation: 'ok', state: 1, failed: false, status: undefined }]);
    assert.deepEqual(b.told, a.told);
    // A deadline already passed: the attempt fails before anything is sent, and is still told.
    const late = { requestId: 'r', traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', sampled: false, deadline: Date.now() - 1 };
    await assert.rejects(
      runWithContext(late, () => client.ok({})),
      (err) => isUpstreamError(err) && err.kind === 'timeout',
    );
    assert.equal(a.told.length, 2);
    assert.equal(a.told[1]!.failed, true);
    assert.equal(b.told.length, 2);
  } finally {
    await client.close();
  }
});

test('an observer between two policies is wrapped as one: it sees what the inner policies let through', async () => {
  const middle = recorder();
  // Any policy inside the observer puts it between two policies (this one passes the attempt on as it is).
  let passed = 0;
  const inner: ClientPolicy = {
    execute<T>(attempt: (signal: AbortSignal) => Promise<T>, _call: CallInfo, signal: AbortSignal): Promise<T> {
      passed++;
      return attempt(signal);
    },
  };
  const client = createClient(contract, { baseUrl, policies: [retry(), middle, inner] });
  try {
    await client.flaky({ params: { id: nextId() } });
    assert.deepEqual(
      middle.told.map((t) => [t.failed, t.status]),
      [
        [true, 503],
        [false, undefined],
      ],
    );
    assert.equal(passed, 2);
  } finally {
    await client.close();
  }
});

test("client spans: the call's span ends with the final outcome and the attempt count, a retry's with its own", async () => {
  const tracing = createTracing({
    service: 'caller',
    config: { OTEL_SDK_DISABLED: false, OTEL_TRACES_SAMPLER: 'always_on', TRACE_RING_SPANS: 100 },
  })!;
  const client = createClient(contract, { baseUrl, policies: [retry()] });
  try {
    const work = startWork(tracing.tracer, 'work', SpanKind.INTERNAL, undefined, undefined, undefined, undefined);
    await runWithContext(work, () => client.flaky({ params: { id: nextId() } }));
    await assert.rejects(runWithContext(work, () => client.missing({})), { status: 404 });
    const spans = tracing.ring!.trace(work.traceId);
    const byName = (name: string) => {
      const found = spans.filter((s) => s.name === name);
      assert.equal(found.length, 1, `one ${name} in ${spans.map((s) => s.name).join(', ')}`);
      return found[0]!;
    };
    const call = byName('dep.flaky');
    assert.equal(call.kind, SpanKind.CLIENT);
    assert.equal(call.parentSpanContext?.spanId, work.spanId);
    assert.equal(call.attributes['http.response.status_code'], 200);
    assert.equal(call.attributes['simplebank.attempts'], 2);
    assert.equal(call.status.code, SpanStatusCode.UNSET);
    const resend = byName('dep.flaky #2');
    assert.equal(resend.parentSpanContext?.spanId, call.spanContext().spanId);
    assert.equal(resend.attributes['http.request.resend_count'], 1);
    assert.equal(resend.attributes['http.response.status_code'], 200);
    assert.ok(resend.ended && call.ended);

    const missing = byName('dep.missing');
    assert.equal(missing.attributes['http.response.status_code'], 404);
    assert.equal(missing.attributes['error.type'], 'not_found');
    assert.equal(missing.attributes['simplebank.attempts'], undefined);
    assert.equal(missing.status.code, SpanStatusCode.ERROR);
    assert.ok(missing.events.some((e) => e.name === 'exception'));
  } finally {
    await client.close();
    await tracing.shutdown();
  }
});
