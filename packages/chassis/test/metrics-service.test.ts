import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import {
  callOutcome,
  defineContract,
  defineService,
  implement,
  parseExposition,
  problems,
  ProblemError,
  route,
  sampleValue,
  startService,
  UpstreamError,
  UpstreamRejectedError,
  type Exposition,
  type RunningService,
} from '../src/index.ts';

// Metrics of services started by the chassis: GET /metrics, dependency calls, resilience state, load shedding.

const TOKEN = 'test-service-token-0123456789';

const calleeContract = defineContract({
  service: 'callee',
  routes: {
    ok: route({ method: 'GET', path: '/ok', responses: { 200: z.object({ ok: z.boolean() }) } }),
    missing: route({ method: 'GET', path: '/things/:id', params: z.object({ id: z.string() }), responses: { 200: z.object({}) } }),
    fail: route({ method: 'GET', path: '/fail', responses: { 200: z.object({}) } }),
    busy: route({ method: 'GET', path: '/busy', responses: { 200: z.object({}) } }),
  },
});

const callerContract = defineContract({
  service: 'caller',
  routes: {
    run: route({ method: 'POST', path: '/run/:what', params: z.object({ what: z.string() }), responses: { 200: z.object({ outcome: z.string() }) } }),
  },
});

let busyCalls = 0;
const callee = defineService({
  contract: calleeContract,
  defaultPort: 0,
  setup: () => ({
    routes: implement(calleeContract, {
      ok: async () => ({ status: 200 as const, body: { ok: true } }),
      missing: async ({ params }) => {
        throw problems.notFound(`thing ${params.id}`);
      },
      fail: async () => {
        throw new Error('callee bug');
      },
      // Shedding on the first attempt, fine on the retry.
      busy: async () => {
        if (busyCalls++ % 2 === 0) throw new ProblemError(503, 'overloaded', 'too many requests in progress', {}, { 'retry-after': '0' });
        return { status: 200 as const, body: {} };
      },
    }),
  }),
});

const caller = defineService({
  contract: callerContract,
  defaultPort: 0,
  dependencies: { callee: calleeContract },
  setup: (ctx) => ({
    routes: implement(callerContract, {
      run: async ({ params }) => {
        const c = ctx.clients.callee;
        const call = params.what === 'ok' ? c.ok({}) : params.what === 'missing' ? c.missing({ params: { id: 'x-42' } }) : params.what === 'fail' ? c.fail({}) : c.busy({});
        try {
          await call;
          return { status: 200 as const, body: { outcome: 'ok' } };
        } catch (err) {
          return { status: 200 as const, body: { outcome: callOutcome(err) } };
        }
      },
    }),
  }),
});

let calleeService: RunningService;
let callerService: RunningService;

before(async () => {
  calleeService = await startService(callee, { PORT: '0', SERVICE_TOKEN: TOKEN, LOG_LEVEL: 'silent' });
  callerService = (await startService(caller, { PORT: '0', SERVICE_TOKEN: TOKEN, LOG_LEVEL: 'silent', CALLEE_URL: calleeService.url, RESILIENCE_CALLEE_RETRY_BASE_DELAY_MS: '1' })) as unknown as RunningService;
});

after(async () => {
  await callerService?.stop();
  await calleeService?.stop();
});

async function scrape(service: RunningService): Promise<Exposition> {
  const res = await fetch(`${service.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

async function run(what: string): Promise<string> {
  const res = await fetch(`${callerService.url}/run/${what}`, { method: 'POST' });
  assert.equal(res.status, 200);
  return ((await res.json()) as { outcome: string }).outcome;
}

test('every service serves /metrics with the HTTP server and process metrics', async () => {
  const e = await scrape(calleeService);
  for (const name of ['http_server_request_duration_seconds', 'http_server_requests_in_flight', 'http_server_shed_total', 'http_server_rate_limited_total', 'process_cpu_seconds_total', 'nodejs_eventloop_lag_seconds']) {
    assert.ok(e.families.has(name), `${name} is declared`);
  }
  // Load shedding is on by default: every reason is exported at 0.
  for (const reason of ['event_loop', 'in_flight', 'route_concurrency']) assert.ok(e.samples.some((s) => s.name === 'http_server_shed_total' && s.labels.reason === reason));
  // A service that calls nobody has no dependency metrics.
  assert.equal(e.families.has('http_client_request_duration_seconds'), false);
  assert.equal(e.families.has('resilience_breaker_state'), false);
});

test('dependency calls are timed per operation with their outcome; attempts count retries', async () => {
  assert.equal(await run('ok'), 'ok');
  assert.equal(await run('missing'), 'client_error');
  assert.equal(await run('fail'), 'error');
  assert.equal(await run('busy'), 'ok'); // 503 overloaded, retried, then fine
  const e = await scrape(callerService);
  const calls = (operation: string, outcome: string) => sampleValue(e, 'http_client_request_duration_seconds_count', { dependency: 'callee', operation, outcome });
  const attempts = (operation: string, outcome: string) => sampleValue(e, 'http_client_attempts_total', { dependency: 'callee', operation, outcome });
  assert.equal(calls('ok', 'ok'), 1);
  assert.equal(calls('missing', 'client_error'), 1);
  assert.equal(calls('fail', 'error'), 1);
  assert.equal(calls('busy', 'ok'), 1);
  assert.equal(attempts('busy', 'shed'), 1);
  assert.equal(attempts('busy', 'ok'), 1);
  assert.equal(sampleValue(e, 'resilience_retries_total', { dependency: 'callee' }), 1);
  // The caller's own route is labelled by its template, not by what was asked.
  assert.equal(sampleValue(e, 'http_server_request_duration_seconds_count', { method: 'POST', route: '/run/:what', status_class: '2xx' }), 4);
  assert.doesNotMatch(e.samples.map((s) => JSON.stringify(s.labels)).join('\n'), /x-42/);
});

test('resilience state per dependency: breaker state and transitions, bulkhead, retry budget', async () => {
  let e = await scrape(callerService);
  assert.equal(sampleValue(e, 'resilience_breaker_state', { dependency: 'callee' }), 0);
  assert.equal(sampleValue(e, 'resilience_bulkhead_in_use', { dependency: 'callee' }), 0);
  assert.equal(sampleValue(e, 'resilience_bulkhead_queued', { dependency: 'callee' }), 0);
  assert.ok(e.samples.some((s) => s.name === 'resilience_retry_budget_exhausted_total' && s.labels.dependency === 'callee'));
  for (const to of ['closed', 'half_open', 'open']) assert.equal(sampleValue(e, 'resilience_breaker_transitions_total', { dependency: 'callee', to }), 0);

  const breaker = callerService.context.resilience.get('callee')!.breaker;
  breaker.trip();
  try {
    assert.equal(await run('ok'), 'rejected_breaker');
    e = await scrape(callerService);
    assert.equal(sampleValue(e, 'resilience_breaker_state', { dependency: 'callee' }), 2);
    assert.equal(sampleValue(e, 'resilience_breaker_transitions_total', { dependency: 'callee', to: 'open' }), 1);
    assert.equal(sampleValue(e, 'http_client_request_duration_seconds_count', { dependency: 'callee', operation: 'ok', outcome: 'rejected_breaker' }), 1);
    // Refused before the wire: not an attempt.
    assert.equal(sampleValue(e, 'http_client_attempts_total', { dependency: 'callee', operation: 'ok', outcome: 'rejected_breaker' }), 0);
  } finally {
    breaker.reset();
  }
  e = await scrape(callerService);
  assert.equal(sampleValue(e, 'resilience_breaker_state', { dependency: 'callee' }), 0);
  assert.equal(sampleValue(e, 'resilience_breaker_transitions_total', { dependency: 'callee', to: 'closed' }), 1);
});

test('call outcomes: how each failure is classified', () => {
  const http = (status: number, code?: string) => new UpstreamError({ kind: 'http', service: 's', operation: 'o', status, ...(code ? { code } : {}), message: 'x' });
  assert.equal(callOutcome(http(404)), 'client_error');
  assert.equal(callOutcome(http(409, 'insufficient_funds')), 'client_error');
  assert.equal(callOutcome(http(429)), 'shed');
  assert.equal(callOutcome(http(503, 'overloaded')), 'shed');
  assert.equal(callOutcome(http(503, 'upstream_unavailable')), 'error');
  assert.equal(callOutcome(http(500)), 'error');
  assert.equal(callOutcome(http(504)), 'timeout');
  assert.equal(callOutcome(new UpstreamError({ kind: 'timeout', service: 's', operation: 'o', message: 'x' })), 'timeout');
  assert.equal(callOutcome(new UpstreamError({ kind: 'connection', service: 's', operation: 'o', message: 'x' })), 'error');
  assert.equal(callOutcome(new UpstreamRejectedError({ code: 'circuit_open', service: 's', operation: 'o', dependency: 's', message: 'x' })), 'rejected_breaker');
  assert.equal(callOutcome(new UpstreamRejectedError({ code: 'bulkhead_full', service: 's', operation: 'o', dependency: 's', message: 'x' })), 'rejected_bulkhead');
  assert.equal(callOutcome(new Error('bug')), 'error');
});

test('METRICS_ENABLED=false: no per-request or per-call recording, /metrics still served', async () => {
  const quiet = (await startService(caller, {
    PORT: '0',
    SERVICE_TOKEN: TOKEN,
    LOG_LEVEL: 'silent',
    CALLEE_URL: calleeService.url,
    METRICS_ENABLED: 'false',
  })) as unknown as RunningService;
  try {
    const res = await fetch(`${quiet.url}/run/ok`, { method: 'POST' });
    assert.equal(res.status, 200);
    const e = await scrape(quiet);
    assert.ok(e.families.has('process_cpu_seconds_total'));
    assert.equal(e.samples.some((s) => s.name === 'http_server_request_duration_seconds_count'), false);
    assert.equal(e.samples.some((s) => s.name === 'http_client_request_duration_seconds_count'), false);
  } finally {
    await quiet.stop();
  }
});
