import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { createClient } from '../../src/client/client.ts';
import { isUpstreamError } from '../../src/client/errors.ts';
import { loadConfig } from '../../src/config/config.ts';
import { defineContract, implement, route } from '../../src/contract/define.ts';
import { parseRouteConcurrency, protectionConfigShape, rateLimitGroupsFromEnv } from '../../src/protection/config.ts';
import { createFaultRegistry } from '../../src/protection/faults.ts';
import { faultPolicy } from '../../src/protection/faults-policy.ts';
import { registerProtection } from '../../src/protection/protect.ts';
import { parseExposition, sampleValue } from '../../src/metrics/index.ts';
import { defineService, startService } from '../../src/service/service.ts';
import { call, gate, recordingLog, startApp, waitFor } from './helpers.ts';

const TOKEN = 'test-service-token-0123456789';
const config = (env: Record<string, string>) => loadConfig('test', protectionConfigShape, env);

test('config: defaults, parsing and errors', () => {
  const defaults = config({});
  assert.equal(defaults.LOAD_SHED_ENABLED, true);
  assert.equal(defaults.LOAD_SHED_MAX_IN_FLIGHT, 256);
  assert.equal(defaults.LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS, 200);
  assert.deepEqual(defaults.LOAD_SHED_ROUTE_CONCURRENCY, {});
  assert.equal(defaults.RATE_LIMIT_LIMIT, undefined, 'unset: the service\'s default rule applies, else 100 per 10 s');
  assert.equal(defaults.RATE_LIMIT_WINDOW_MS, undefined);
  assert.equal(defaults.RATE_LIMIT_REDIS_URL, undefined);
  assert.equal(defaults.FAULTS_ENABLED, false, 'fault injection is off unless asked for');

  const set = config({ FAULTS_ENABLED: 'true', LOAD_SHED_ROUTE_CONCURRENCY: 'post /orders=32, GET /prices/:symbol=8', RATE_LIMIT_REDIS_URL: 'redis://127.0.0.1:6379', RATE_LIMIT_ENABLED: 'off' });
  assert.equal(set.FAULTS_ENABLED, true);
  assert.equal(set.RATE_LIMIT_ENABLED, false);
  assert.deepEqual(set.LOAD_SHED_ROUTE_CONCURRENCY, { 'POST /orders': 32, 'GET /prices/:symbol': 8 });
  assert.equal(set.RATE_LIMIT_REDIS_URL, 'redis://127.0.0.1:6379');
  assert.equal(config({ RATE_LIMIT_REDIS_URL: '' }).RATE_LIMIT_REDIS_URL, undefined, 'empty means unset');

  assert.throws(() => config({ FAULTS_ENABLED: 'maybe', LOAD_SHED_ROUTE_CONCURRENCY: 'orders:3' }), (err: Error) => /FAULTS_ENABLED/.test(err.message) && /LOAD_SHED_ROUTE_CONCURRENCY/.test(err.message));
  assert.throws(() => parseRouteConcurrency('GET /x=0'), /METHOD \/path=limit/);

  const groups = rateLimitGroupsFromEnv([{ name: 'place-order', routes: ['POST /orders'], limit: 5, windowMs: 1000 }], { RATE_LIMIT_PLACE_ORDER_LIMIT: '2' });
  assert.equal(groups[0]!.limit, 2);
  assert.equal(groups[0]!.windowMs, 1000);
  assert.throws(() => rateLimitGroupsFromEnv([{ name: 'x', routes: [], limit: 1, windowMs: 1 }], { RATE_LIMIT_X_WINDOW_MS: 'soon' }), /RATE_LIMIT_X_WINDOW_MS/);
});

test('registerProtection: all pieces from config, in order, with a readiness check', async () => {
  const log = recordingLog();
  let protection!: ReturnType<typeof registerProtection>;
  const { app, url } = await startApp((app) => {
    protection = registerProtection(app, {
      // Event-loop shedding off: a CPU-starved test process can lag past 200 ms, and this test is not about that.
      config: config({ FAULTS_ENABLED: 'true', RATE_LIMIT_LIMIT: '2', RATE_LIMIT_WINDOW_MS: '60000', LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0' }),
      env: {},
      serviceToken: TOKEN,
      log,
      rateLimit: { keyFor: (r) => r.headers['x-client'] as string | undefined },
    });
    // After: registerProtection attaches its hooks to routes as they are declared.
    app.get('/prices/:symbol', async () => ({ ok: true }));
    app.get('/health/ready', async () => ({ status: 'ready' }));
  });
  try {
    assert.ok(protection.shedder && protection.limiter);
    assert.deepEqual(Object.keys(protection.readiness), ['load']);
    await protection.readiness.load!();
    assert.match(log.warnings[0]!.msg, /fault injection is enabled/);

    const ok = await call(`${url}/prices/A`, { headers: { 'x-client': 'a' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('ratelimit-limit'), '2');
    await call(`${url}/prices/A`, { headers: { 'x-client': 'a' } });
    assert.equal((await call(`${url}/prices/A`, { headers: { 'x-client': 'a' } })).status, 429);

    const put = await call(`${url}/admin/faults/x`, {
      method: 'PUT',
      headers: { 'x-service-token': TOKEN, 'content-type': 'application/json' },
      body: JSON.stringify({ target: { direction: 'incoming', route: 'GET /prices/:symbol' }, errorRate: 1 }),
    });
    assert.equal(put.status, 200);
    assert.equal((await call(`${url}/prices/A`, { headers: { 'x-client': 'b' } })).body.code, 'injected_fault');
    // Faults come before rate limits (onRequest vs. preParsing): the faulted request never took from b's quota.
    assert.deepEqual(protection.stats().rateLimit, { store: 'memory', allowed: 2, limited: 1, failedOpen: 0 });
    assert.equal(protection.stats().loadShedding?.inFlight, 0);
  } finally {
    await app.close();
  }
  assert.equal(protection.faults.size(), 0, 'closing the app clears the faults');
});

test('registerProtection without rateLimit (every service but the gateway) and with faults disabled', async () => {
  let protection!: ReturnType<typeof registerProtection>;
  const { app, url } = await startApp((app) => {
    protection = registerProtection(app, { config: config({ LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0' }), serviceToken: TOKEN });
    app.get('/x', async () => ({ ok: true }));
  });
  try {
    assert.equal(protection.limiter, undefined);
    const x = await call(`${url}/x`);
    assert.equal(x.status, 200);
    assert.equal(x.headers.get('ratelimit-limit'), null);
    assert.equal((await call(`${url}/admin/faults`, { headers: { 'x-service-token': TOKEN } })).status, 404);
  } finally {
    await app.close();
  }
});

test('a chassis client with faultPolicy: injected outgoing errors fail the call without reaching the server', async () => {
  const contract = defineContract({
    service: 'market-data',
    routes: { getPrice: route({ method: 'GET', path: '/prices/:symbol', params: z.object({ symbol: z.string() }), responses: { 200: z.object({ symbol: z.string() }) } }) },
  });
  let served = 0;
  const { app, url } = await startApp((app) => {
    app.get('/prices/:symbol', async (request) => {
      served++;
      return { symbol: (request.params as { symbol: string }).symbol };
    });
  });
  const faults = createFaultRegistry({ enabled: true });
  const client = createClient(contract, { baseUrl: url, policies: [faultPolicy(faults, 'market-data')] });
  try {
    assert.deepEqual((await client.getPrice({ params: { symbol: 'ACME' } })).body, { symbol: 'ACME' });
    faults.set('md', { target: { direction: 'outgoing', dependency: 'market-data', operation: 'getPrice' }, errorRate: 1 });
    const err = await client.getPrice({ params: { symbol: 'ACME' } }).catch((e: unknown) => e);
    assert.ok(isUpstreamError(err));
    assert.equal((err as { kind: string }).kind, 'connection');
    assert.equal(served, 1);
  } finally {
    faults.close();
    await client.close();
    await app.close();
  }
});

/** A stand-in for the gateway's authentication: `x-user` names the caller (401 without it); the limiter keys on who it found. */
function headerAuthentication() {
  const verified: string[] = [];
  const clientOf = new WeakMap<object, string>();
  return {
    verified,
    async authenticate(request: FastifyRequest) {
      const who = request.headers['x-user'] as string | undefined;
      verified.push(who ?? '(none)');
      if (!who) throw Object.assign(new Error('no credentials'), { statusCode: 401 });
      clientOf.set(request, who);
    },
    keyFor: (request: FastifyRequest) => clientOf.get(request),
  };
}

test('authentication runs after load shedding and before rate limits', async () => {
  const { verified, authenticate, keyFor } = headerAuthentication();
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let protection!: ReturnType<typeof registerProtection>;
  const { app, url } = await startApp((app) => {
    protection = registerProtection(app, {
      config: config({ LOAD_SHED_MAX_IN_FLIGHT: '1', LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0', RATE_LIMIT_LIMIT: '1', RATE_LIMIT_WINDOW_MS: '60000' }),
      env: {},
      serviceToken: TOKEN,
      authenticate,
      // The rate limiter sees who authentication found.
      rateLimit: { keyFor },
    });
    app.get('/slow', async () => {
      await held;
      return { ok: true };
    });
    app.get('/health/ready', async () => ({ status: 'ready' }));
  });
  try {
    const first = call(`${url}/slow`, { headers: { 'x-user': 'ada' } });
    // Authenticated means admitted: it holds the one slot until released.
    while (verified.length === 0) await new Promise((r) => setTimeout(r, 5));
    // The one in-flight slot is taken: the next request is shed before anyone looks at its credentials.
    assert.equal((await call(`${url}/slow`, { headers: { 'x-user': 'grace' } })).status, 503);
    assert.equal((await call(`${url}/slow`)).status, 503);
    assert.deepEqual(verified, ['ada']);
    release();
    assert.equal((await first).status, 200);
    // Infrastructure routes are not authenticated.
    assert.equal((await call(`${url}/health/ready`)).status, 200);
    assert.equal((await call(`${url}/slow`)).status, 401);
    // ada's quota (1) is spent; grace, identified by authentication, has her own.
    assert.equal((await call(`${url}/slow`, { headers: { 'x-user': 'ada' } })).status, 429);
    assert.equal((await call(`${url}/slow`, { headers: { 'x-user': 'grace' } })).status, 200);
    assert.deepEqual(verified, ['ada', '(none)', 'ada', 'grace']);
    assert.equal(protection.stats().loadShedding?.inFlight, 0);
  } finally {
    await app.close();
  }
});

test('unknown routes: shed and rate-limited before the 404 (by IP: no authentication), infrastructure paths left alone, no faults', async () => {
  const { verified, authenticate, keyFor } = headerAuthentication();
  const release = gate();
  let started = 0;
  let protection!: ReturnType<typeof registerProtection>;
  const { app, url } = await startApp((app) => {
    protection = registerProtection(app, {
      config: config({ FAULTS_ENABLED: 'true', LOAD_SHED_MAX_IN_FLIGHT: '1', LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0', RATE_LIMIT_LIMIT: '2', RATE_LIMIT_WINDOW_MS: '60000' }),
      env: {},
      serviceToken: TOKEN,
      log: recordingLog(),
      authenticate,
      rateLimit: { keyFor },
    });
    // As the chassis' server does (createHttpServer): the protections of unknown routes run before the 404.
    app.setNotFoundHandler({ preValidation: protection.notFoundHooks }, (request, reply) => reply.status(404).send({ code: 'route_not_found', path: request.url }));
    app.get('/slow', async () => {
      started++;
      await release.promise;
      return { ok: true };
    });
  });
  try {
    // Overloaded: the one in-flight slot is held. An unknown route is shed like a known one, before its limit.
    const held = call(`${url}/slow`, { headers: { 'x-user': 'ada' } });
    await waitFor(() => started === 1, 'the slow request to start');
    const shed = await call(`${url}/nope`, { headers: { 'x-user': 'ada' } });
    assert.equal(shed.status, 503);
    assert.equal(shed.body.code, 'overloaded');
    assert.equal(shed.headers.get('retry-after'), '1');
    assert.equal(protection.stats().loadShedding?.shed.in_flight, 1);
    // Infrastructure paths are never shed, known or not.
    for (const path of ['/health/nope', '/admin/nope', '/metrics/nope', '/openapi.json/x']) assert.equal((await call(`${url}${path}`)).status, 404, path);
    release.open();
    assert.equal((await held).status, 200);
    assert.deepEqual(protection.stats().rateLimit, { store: 'memory', allowed: 1, limited: 0, failedOpen: 0 }, 'the shed request took no quota');

    // Under the limit: a 404 with the RateLimit headers. No identity is sought for a 404: the caller's IP is the client.
    const first = await call(`${url}/nope?x=1`, { headers: { 'x-user': 'ada' } });
    assert.equal(first.status, 404);
    assert.equal(first.body.code, 'route_not_found');
    assert.equal(first.headers.get('ratelimit-limit'), '2');
    assert.equal(first.headers.get('ratelimit-remaining'), '1');
    assert.equal((await call(`${url}/nope/deeper`, { headers: { 'x-user': 'grace' } })).headers.get('ratelimit-remaining'), '0', 'same address, same quota');
    const limited = await call(`${url}/nope`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(limited.status, 429);
    assert.equal(limited.body.code, 'rate_limited');
    assert.equal(limited.headers.get('ratelimit-remaining'), '0');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assert.deepEqual(verified, ['ada'], 'authentication ran for the known route only');
    // Over the limit, infrastructure paths still answer as before.
    const infra = await call(`${url}/health/nope`);
    assert.equal(infra.status, 404);
    assert.equal(infra.headers.get('ratelimit-limit'), null);
    // An authenticated client is its own: ada's known route is not limited by her address's 404s.
    assert.equal((await call(`${url}/slow`, { headers: { 'x-user': 'ada' } })).status, 200);

    // Incoming faults are for routes callers depend on: a `*` fault leaves unknown routes alone.
    const put = await call(`${url}/admin/faults/all`, {
      method: 'PUT',
      headers: { 'x-service-token': TOKEN, 'content-type': 'application/json' },
      body: JSON.stringify({ target: { direction: 'incoming', route: '*' }, errorRate: 1 }),
    });
    assert.equal(put.status, 200);
    assert.equal((await call(`${url}/slow`, { headers: { 'x-user': 'ada' } })).body.code, 'injected_fault');
    assert.equal((await call(`${url}/nope`)).body.code, 'rate_limited');
    assert.equal(protection.stats().loadShedding?.inFlight, 0);
  } finally {
    release.open();
    await app.close();
  }
});

test('a started service: unknown routes count against the client\'s limit and are shed under overload, with bounded metric labels', async () => {
  const contract = defineContract({
    service: 'guarded',
    routes: {
      fast: route({ method: 'GET', path: '/fast', responses: { 200: z.object({ ok: z.boolean() }) } }),
      slow: route({ method: 'GET', path: '/slow', responses: { 200: z.object({ ok: z.boolean() }) } }),
    },
  });
  const release = gate();
  let started = 0;
  const service = defineService({
    contract,
    defaultPort: 0,
    protection: { rateLimit: { keyFor: (r) => r.headers['x-client'] as string | undefined } },
    setup: () => ({
      routes: implement(contract, {
        fast: async () => ({ status: 200 as const, body: { ok: true } }),
        slow: async () => {
          started++;
          await release.promise;
          return { status: 200 as const, body: { ok: true } };
        },
      }),
    }),
  });
  const running = await startService(service, {
    PORT: '0',
    SERVICE_TOKEN: TOKEN,
    LOG_LEVEL: 'silent',
    LOAD_SHED_MAX_IN_FLIGHT: '1',
    LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
    RATE_LIMIT_LIMIT: '3',
    RATE_LIMIT_WINDOW_MS: '60000',
  });
  const url = running.url;
  const a = { headers: { 'x-client': 'a' } };
  try {
    // Not overloaded, under the limit: the 404 problem as ever, naming the path, with the client's RateLimit headers.
    const notFound = await call(`${url}/nope/1?secret=x`, a);
    assert.equal(notFound.status, 404);
    assert.match(notFound.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.equal(notFound.body.code, 'route_not_found');
    assert.equal(notFound.body.detail, 'no route GET /nope/1');
    assert.equal(notFound.headers.get('ratelimit-remaining'), '2');
    // Unknown and known routes draw on one quota: a client spending it on unknown paths is limited everywhere.
    assert.equal((await call(`${url}/fast`, a)).headers.get('ratelimit-remaining'), '1');
    assert.equal((await call(`${url}/nope/2`, a)).status, 404);
    const limited = await call(`${url}/nope/3`, a);
    assert.equal(limited.status, 429);
    assert.equal(limited.body.code, 'rate_limited');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assert.equal(limited.headers.get('ratelimit-limit'), '3');
    assert.equal((await call(`${url}/fast`, a)).status, 429);
    // Another client is not affected; infrastructure paths are not limited.
    assert.equal((await call(`${url}/fast`, { headers: { 'x-client': 'b' } })).status, 200);
    assert.equal((await call(`${url}/nope`, { headers: { 'x-client': 'b' } })).status, 404);
    assert.equal((await call(`${url}/health/nope`, a)).status, 404);

    // Overloaded (the one slot held): an unknown route is shed.
    const held = call(`${url}/slow`, { headers: { 'x-client': 'c' } });
    await waitFor(() => started === 1, 'the slow request to start');
    const shed = await call(`${url}/nope`, { headers: { 'x-client': 'c' } });
    assert.equal(shed.status, 503);
    assert.equal(shed.body.code, 'overloaded');
    assert.equal(shed.headers.get('retry-after'), '1');
    const metrics = await fetch(`${url}/metrics`);
    assert.equal(metrics.status, 200, 'infrastructure is not shed');
    const exposition = parseExposition(await metrics.text());
    assert.equal(sampleValue(exposition, 'http_server_shed_total', { reason: 'in_flight' }), 1);
    assert.equal(sampleValue(exposition, 'http_server_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status_class: '5xx' }), 1);
    assert.equal(sampleValue(exposition, 'http_server_rate_limited_total', { group: 'default' }), 2, 'the unknown route\'s 429 and the known one\'s');
    // Raw paths never become labels.
    const routes = new Set(exposition.samples.filter((s) => s.name.startsWith('http_server_request_duration_seconds')).map((s) => s.labels.route));
    assert.deepEqual([...routes].sort(), ['/fast', 'unmatched']);
    release.open();
    assert.equal((await held).status, 200);
  } finally {
    release.open();
    await running.stop();
  }
});
