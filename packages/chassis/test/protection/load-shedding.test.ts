import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLoadShedder, loadSheddingPlugin, type LoadShedder } from '../../src/protection/load-shedding.ts';
import { call, gate, startApp, waitFor, type Answer } from './helpers.ts';

test('core: in-flight limit, route concurrency, release, counters', () => {
  const shedder = createLoadShedder({ maxInFlight: 3, maxEventLoopDelayMs: 0, routeConcurrency: { 'POST /orders': 1 } });
  assert.equal(shedder.admit('POST /orders'), undefined);
  assert.equal(shedder.admit('POST /orders'), 'route_concurrency');
  assert.equal(shedder.isShedding(), false, 'a saturated route does not make the instance unready');
  assert.equal(shedder.admit('GET /a'), undefined);
  assert.equal(shedder.admit('GET /a'), undefined);
  assert.equal(shedder.admit('GET /a'), 'in_flight');
  assert.equal(shedder.isShedding(), true);
  shedder.release('POST /orders');
  assert.equal(shedder.admit('POST /orders'), undefined, 'a released slot is reused');
  const stats = shedder.stats();
  assert.equal(stats.inFlight, 3);
  assert.equal(stats.shedTotal, 2);
  assert.deepEqual(stats.shed, { in_flight: 1, event_loop_delay: 0, route_concurrency: 1 });
  assert.deepEqual(stats.routes['POST /orders'], { limit: 1, inUse: 1, rejected: 1 });
  shedder.close();
});

test('core: event-loop delay sheds everything; readiness fails while shedding and recovers after holdMs', async () => {
  let delay = 0;
  let now = 0;
  const shedder = createLoadShedder({ maxInFlight: 100, maxEventLoopDelayMs: 200, eventLoopDelay: () => delay, now: () => now, holdMs: 1000 });
  assert.equal(shedder.admit('GET /a'), undefined);
  await shedder.readinessCheck();
  delay = 250;
  assert.equal(shedder.admit('GET /a'), 'event_loop_delay');
  await assert.rejects(shedder.readinessCheck(), /event-loop delay 250 ms/);
  delay = 10;
  now = 500;
  assert.equal(shedder.isShedding(), true, 'still within holdMs of the last shed request');
  now = 1500;
  assert.equal(shedder.isShedding(), false);
  await shedder.readinessCheck();
});

async function sheddingApp(shedder: LoadShedder) {
  const release = gate();
  let started = 0;
  const { app, url } = await startApp((app) => {
    // Before the routes: the shedding hook is attached to each route as it is declared.
    loadSheddingPlugin(app, { shedder });
    app.get('/slow', async () => {
      started++;
      await release.promise;
      return { ok: true };
    });
    app.post('/orders', async () => {
      started++;
      await release.promise;
      return { placed: true };
    });
    app.get('/fast', async () => ({ ok: true }));
    app.get('/block', async () => {
      // Busy-wait: the event loop is stuck, as under a CPU-heavy request.
      const until = Date.now() + 300;
      while (Date.now() < until);
      return { blocked: true };
    });
    app.get('/health/ready', async (_req, reply) => {
      try {
        await shedder.readinessCheck();
        return { status: 'ready' };
      } catch (err) {
        return reply.status(503).send({ status: 'not ready', reason: (err as Error).message });
      }
    });
    app.get('/health/live', async () => ({ status: 'ok' }));
  });
  return { app, url, release, started: () => started };
}

function assertShed(answer: Answer, reason: string) {
  assert.equal(answer.status, 503);
  assert.match(answer.headers.get('content-type') ?? '', /application\/problem\+json/);
  assert.equal(answer.body.code, 'overloaded');
  assert.equal(answer.body.reason, reason);
  assert.equal(answer.headers.get('retry-after'), '1');
}

test('a burst beyond the in-flight limit: the excess gets 503 + Retry-After at once, admitted requests succeed, exempt routes answer', async () => {
  const shedder = createLoadShedder({ maxInFlight: 4, maxEventLoopDelayMs: 0 });
  const { app, url, release, started } = await sheddingApp(shedder);
  try {
    const admitted = Array.from({ length: 4 }, () => call(`${url}/slow`));
    await waitFor(() => started() === 4, 'four slow requests in progress');
    // The slow requests are still held (the gate is closed): these answers cannot have waited for them.
    const excess = await Promise.all(Array.from({ length: 20 }, () => call(`${url}/slow`)));
    for (const a of excess) assertShed(a, 'in_flight');
    assert.equal(started(), 4, 'shed requests never reached the handler');

    assert.equal((await call(`${url}/health/live`)).status, 200, 'liveness is exempt');
    const ready = await call(`${url}/health/ready`);
    assert.equal(ready.status, 503, 'readiness turns false while shedding');
    assert.match(String(ready.body.reason), /shedding load/);

    release.open();
    for (const a of await Promise.all(admitted)) assert.equal(a.status, 200);
    await waitFor(() => shedder.stats().inFlight === 0, 'slots released');
    assert.equal((await call(`${url}/fast`)).status, 200, 'capacity is back');
    assert.equal(shedder.stats().shed.in_flight, 20);
    await waitFor(async () => (await call(`${url}/health/ready`)).status === 200, 'ready again after the hold time');
  } finally {
    release.open();
    await app.close();
  }
});

test('per-route concurrency: an expensive route is capped while the rest of the service answers', async () => {
  const shedder = createLoadShedder({ maxInFlight: 100, maxEventLoopDelayMs: 0, routeConcurrency: { 'POST /orders': 2 } });
  const { app, url, release, started } = await sheddingApp(shedder);
  try {
    const admitted = [call(`${url}/orders`, { method: 'POST' }), call(`${url}/orders`, { method: 'POST' })];
    await waitFor(() => started() === 2, 'two orders in progress');
    assertShed(await call(`${url}/orders`, { method: 'POST' }), 'route_concurrency');
    assert.equal((await call(`${url}/fast`)).status, 200);
    assert.equal((await call(`${url}/health/ready`)).status, 200, 'a saturated route does not make the instance unready');
    release.open();
    for (const a of await Promise.all(admitted)) assert.equal(a.status, 200);
  } finally {
    release.open();
    await app.close();
  }
});

test('a blocked event loop (real perf_hooks monitor) sheds new requests; health still answers', async () => {
  const shedder = createLoadShedder({ maxInFlight: 0, maxEventLoopDelayMs: 100, eventLoopWindowMs: 250 });
  const { app, url } = await sheddingApp(shedder);
  try {
    // Block the loop, then ask right away; repeat until a window's p99 has seen the block (polling, no timing bets).
    const shed = await waitFor(async () => {
      await call(`${url}/block`).catch(() => undefined);
      const a = await call(`${url}/fast`);
      return a.status === 503 ? a : undefined;
    }, 'a request shed for event-loop delay', 20_000);
    assertShed(shed, 'event_loop_delay');
    assert.equal((await call(`${url}/health/live`)).status, 200, 'exempt routes are never shed');
    assert.ok(shedder.stats().shed.event_loop_delay >= 1);
    await waitFor(async () => (await call(`${url}/fast`)).status === 200, 'recovery once the loop is idle', 20_000);
  } finally {
    await app.close();
  }
});
