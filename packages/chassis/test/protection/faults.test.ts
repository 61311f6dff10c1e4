import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CallInfo } from '../../src/client/client.ts';
import { isUpstreamError } from '../../src/client/errors.ts';
import { isRetryableFailure } from '../../src/resilience/classify.ts';
import { createFaultRegistry, type FaultRegistry } from '../../src/protection/faults.ts';
import { faultsPlugin } from '../../src/protection/faults-http.ts';
import { faultPolicy, InjectedFaultError } from '../../src/protection/faults-policy.ts';
import { abandonableGet, call, recordingLog, startApp, waitFor } from './helpers.ts';

const TOKEN = 'test-service-token-0123456789';
const admin = { 'x-service-token': TOKEN };
const json = (body: unknown): RequestInit => ({ method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify(body) });

test('registry: the most specific live fault wins; disabled registries refuse faults', () => {
  const registry = createFaultRegistry({ enabled: true, random: () => 0.5 });
  registry.set('all', { target: { direction: 'incoming', route: '*' }, latencyMs: 10 });
  registry.set('one', { target: { direction: 'incoming', route: 'get /prices/:symbol' }, errorRate: 0.6 });
  registry.set('dep', { target: { direction: 'outgoing', dependency: 'market-data' }, errorRate: 0.4 });
  registry.set('op', { target: { direction: 'outgoing', dependency: 'market-data', operation: 'getPrice' }, hang: true });

  assert.equal(registry.incoming('GET /prices/:symbol')?.fault.id, 'one', 'route names are normalised (method upper-cased)');
  assert.equal(registry.incoming('GET /prices/:symbol')?.error, true, '0.5 < 0.6');
  assert.equal(registry.incoming('POST /orders')?.fault.id, 'all');
  assert.equal(registry.incoming('GET /health/ready', true), undefined, '`*` skips infrastructure routes');
  assert.equal(registry.outgoing('market-data', 'getPrice')?.hang, true);
  assert.equal(registry.outgoing('market-data', 'listPrices')?.fault.id, 'dep');
  assert.equal(registry.outgoing('market-data', 'listPrices')?.error, false, '0.5 ≥ 0.4');
  assert.equal(registry.outgoing('accounts', 'x'), undefined);

  assert.throws(() => registry.set('bad id!', { target: { direction: 'incoming', route: '*' }, hang: true }), /invalid fault id/);
  assert.throws(() => registry.set('x', { target: { direction: 'incoming', route: '*' } }), /needs latencyMs/);
  assert.throws(() => registry.set('x', { target: { direction: 'incoming', route: 'prices' }, hang: true }), /METHOD \/path/);
  assert.equal(registry.clear(), 4);
  registry.close();

  const off = createFaultRegistry({ enabled: false });
  assert.throws(() => off.set('x', { target: { direction: 'incoming', route: '*' }, hang: true }), /disabled/);
});

test('registry: a fault removes itself after its duration and tells its listeners', async () => {
  const registry = createFaultRegistry({ enabled: true });
  const removed: string[] = [];
  registry.onRemoved((f) => removed.push(f.id));
  const fault = registry.set('brief', { target: { direction: 'incoming', route: '*' }, latencyMs: 5, durationSeconds: 0.05 });
  assert.equal(registry.isActive(fault), true);
  await waitFor(() => registry.size() === 0, 'the fault to expire');
  assert.deepEqual(removed, ['brief']);
  assert.equal(registry.isActive(fault), false);
  registry.close();
});

async function faultedApp(registry: FaultRegistry) {
  let handled = 0;
  let arrived = 0;
  const log = recordingLog();
  const started = await startApp((app) => {
    // Counts requests before the fault hook sees them (an app-level hook runs before route-level ones), so tests
    // know when one is being held.
    app.addHook('onRequest', (_req, _reply, done) => {
      arrived++;
      done();
    });
    // Before the routes: the fault hook is attached to each route as it is declared.
    faultsPlugin(app, { registry, serviceToken: TOKEN, log });
    app.get('/prices/:symbol', async (request) => {
      handled++;
      return { symbol: (request.params as { symbol: string }).symbol };
    });
    app.get('/health/ready', async () => ({ status: 'ready' }));
  });
  return { ...started, log, handled: () => handled, arrived: () => arrived };
}

test('admin API: service credential required, body validated, set/list/clear', async () => {
  const registry = createFaultRegistry({ enabled: true });
  const { app, url, log } = await faultedApp(registry);
  try {
    assert.equal((await call(`${url}/admin/faults`)).status, 401);
    assert.equal((await call(`${url}/admin/faults`, { headers: { 'x-service-token': 'wrong-token-0123456789x' } })).status, 401);
    const noAuthPut = await call(`${url}/admin/faults/x`, { ...json({ target: { direction: 'incoming' }, hang: true }), headers: { 'content-type': 'application/json' } });
    assert.equal(noAuthPut.status, 401);
    assert.equal(registry.size(), 0);

    const invalid = await call(`${url}/admin/faults/x`, json({ target: { direction: 'sideways' }, errorRate: 2 }));
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.code, 'validation_failed');
    assert.ok(Array.isArray(invalid.body.errors) && (invalid.body.errors as unknown[]).length >= 1);

    const set = await call(`${url}/admin/faults/slow-prices`, json({ target: { direction: 'incoming', route: 'GET /prices/:symbol' }, latencyMs: 20, durationSeconds: 30 }));
    assert.equal(set.status, 200);
    assert.equal(set.body.id, 'slow-prices');
    assert.equal(set.body.remainingSeconds, 30);
    const out = await call(`${url}/admin/faults/md-down`, json({ target: { direction: 'outgoing', dependency: 'market-data' }, errorRate: 1 }));
    assert.equal(out.status, 200);

    const list = await call(`${url}/admin/faults`, { headers: admin });
    assert.deepEqual((list.body.faults as { id: string }[]).map((f) => f.id), ['slow-prices', 'md-down']);

    assert.equal((await call(`${url}/admin/faults/slow-prices`, { method: 'DELETE', headers: admin })).status, 204);
    const missing = await call(`${url}/admin/faults/slow-prices`, { method: 'DELETE', headers: admin });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'fault_not_found');
    const cleared = await call(`${url}/admin/faults`, { method: 'DELETE', headers: admin });
    assert.deepEqual(cleared.body, { cleared: 1 });
    assert.deepEqual(log.infos, ['fault injected', 'fault injected', 'fault cleared', 'all faults cleared']);
  } finally {
    await app.close();
  }
});

test('disabled: admin routes answer 404 and requests are untouched', async () => {
  const registry = createFaultRegistry({ enabled: false });
  const { app, url } = await faultedApp(registry);
  try {
    assert.equal((await call(`${url}/admin/faults`, { headers: admin })).status, 404);
    assert.equal((await call(`${url}/admin/faults/x`, json({ target: { direction: 'incoming' }, hang: true }))).status, 404);
    assert.equal((await call(`${url}/prices/A`)).status, 200);
  } finally {
    await app.close();
  }
});

test('incoming faults: errors answer 503 injected_fault; latency delays then serves; other routes and health untouched', async () => {
  const registry = createFaultRegistry({ enabled: true });
  const { app, url, handled } = await faultedApp(registry);
  try {
    registry.set('fail', { target: { direction: 'incoming', route: 'GET /prices/:symbol' }, errorRate: 1 });
    const failed = await call(`${url}/prices/ACME`);
    assert.equal(failed.status, 503);
    assert.match(failed.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.equal(failed.body.code, 'injected_fault');
    assert.equal(failed.body.faultId, 'fail');
    assert.equal(handled(), 0);

    registry.set('fail', { target: { direction: 'incoming', route: '*' }, latencyMs: 30 });
    const slow = await call(`${url}/prices/ACME`);
    assert.equal(slow.status, 200, 'latency only: the request is then served');
    assert.equal(handled(), 1);
    assert.equal((await call(`${url}/health/ready`)).status, 200);

    registry.set('fail', { target: { direction: 'incoming', route: '*' }, latencyMs: 30, errorRate: 1 });
    assert.equal((await call(`${url}/prices/ACME`)).status, 503, 'latency then error');
  } finally {
    await app.close();
  }
});

test('hang: held until the fault is cleared, then served; a client giving up frees its hold', async () => {
  const registry = createFaultRegistry({ enabled: true });
  const { app, url, handled, arrived } = await faultedApp(registry);
  try {
    registry.set('hang', { target: { direction: 'incoming', route: 'GET /prices/:symbol' }, hang: true });
    const abandoned = abandonableGet(`${url}/prices/A`);
    const held = call(`${url}/prices/B`);
    await waitFor(() => arrived() === 2, 'both requests held');
    abandoned.abandon();
    assert.equal(await abandoned.outcome, 'abandoned', 'the client gave up');
    assert.equal(handled(), 0);
    const cleared = await call(`${url}/admin/faults/hang`, { method: 'DELETE', headers: admin });
    assert.equal(cleared.status, 204, 'the admin route is never faulted');
    const answer = await held;
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { symbol: 'B' });
    assert.equal(handled(), 1, 'the abandoned request was dropped, not served');
  } finally {
    await app.close();
  }
});

test('hang: closing the server releases hung requests (503), so shutdown is not blocked', async () => {
  const registry = createFaultRegistry({ enabled: true });
  const { app, url, arrived } = await faultedApp(registry);
  registry.set('hang', { target: { direction: 'incoming', route: '*' }, hang: true, durationSeconds: 3600 });
  const held = Array.from({ length: 3 }, () => call(`${url}/prices/A`));
  await waitFor(() => arrived() === 3, 'three requests held');
  await app.close(); // would never resolve if the held requests stayed in flight
  for (const a of await Promise.all(held)) {
    assert.equal(a.status, 503);
    assert.equal(a.body.code, 'injected_fault');
    assert.match(String(a.body.detail), /server closing/);
  }
});

const info: CallInfo = { service: 'market-data', operation: 'getPrice', method: 'GET', retryable: true };
const idle = () => new AbortController().signal;

test('faultPolicy: injected errors are connection-like UpstreamErrors (retryable), before any attempt', async () => {
  const registry = createFaultRegistry({ enabled: true });
  const policy = faultPolicy(registry, 'market-data');
  let attempts = 0;
  const attempt = async () => {
    attempts++;
    return 'price';
  };
  assert.equal(await policy.execute(attempt, info, idle()), 'price', 'no fault: straight through');
  registry.set('down', { target: { direction: 'outgoing', dependency: 'market-data' }, errorRate: 1 });
  const err = await policy.execute(attempt, info, idle()).catch((e: unknown) => e);
  assert.ok(err instanceof InjectedFaultError);
  assert.ok(isUpstreamError(err));
  assert.equal(err.kind, 'connection');
  assert.equal(err.faultId, 'down');
  assert.equal(isRetryableFailure(err), true);
  assert.equal(attempts, 1, 'the failed call never reached the attempt');
  assert.equal(await faultPolicy(registry, 'accounts').execute(attempt, { ...info, service: 'accounts' }, idle()), 'price', 'other dependencies unaffected');
  registry.close();
});

test('faultPolicy: latency delays the attempt; a hang ends as a timeout at the attempt timeout or deadline', async () => {
  const registry = createFaultRegistry({ enabled: true });
  registry.set('slow', { target: { direction: 'outgoing', dependency: 'market-data', operation: 'getPrice' }, latencyMs: 20 });
  assert.equal(await faultPolicy(registry, 'market-data').execute(async () => 'ok', info, idle()), 'ok');

  registry.set('slow', { target: { direction: 'outgoing', dependency: 'market-data' }, hang: true });
  const timedOut = await faultPolicy(registry, 'market-data', { attemptTimeoutMs: 30 }).execute(async () => 'never', info, idle()).catch((e: unknown) => e);
  assert.ok(timedOut instanceof InjectedFaultError);
  assert.equal(timedOut.kind, 'timeout');

  const byDeadline = await faultPolicy(registry, 'market-data', { deadline: () => Date.now() + 30 }).execute(async () => 'never', info, idle()).catch((e: unknown) => e);
  assert.equal((byDeadline as InjectedFaultError).kind, 'timeout');

  // An outer policy aborting (e.g. a total timeout) ends the wait with its reason.
  const controller = new AbortController();
  const aborted = faultPolicy(registry, 'market-data').execute(async () => 'never', info, controller.signal).catch((e: unknown) => e);
  controller.abort(new Error('outer timeout'));
  assert.match(((await aborted) as Error).message, /outer timeout/);

  // Clearing the fault lets a waiting call go ahead.
  const waiting = faultPolicy(registry, 'market-data').execute(async () => 'recovered', info, idle());
  registry.delete('slow');
  assert.equal(await waiting, 'recovered');
  registry.close();
});
