// Rate limiting over real HTTP: a tiny fastify app with the plugin, clients told apart by a header (as the
// gateway would by the verified token's subject) or by IP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createRedisRateLimitStore } from '../../src/protection/rate-limit-redis-store.ts';
import { createRateLimiter, rateLimitPlugin, type RateLimiterOptions } from '../../src/protection/rate-limit.ts';
import { call, reachable, startApp } from './helpers.ts';

async function limitedApp(options: RateLimiterOptions) {
  const limiter = createRateLimiter(options);
  const started = await startApp((app) => {
    // Before the routes: the limit is attached to each route as it is declared (createHttpServer's beforeRoutes).
    rateLimitPlugin(app, { limiter, keyFor: (request) => request.headers['x-client'] as string | undefined });
    app.get('/prices/:symbol', async () => ({ ok: true }));
    app.post('/orders', async () => ({ placed: true }));
    app.get('/health/ready', async () => ({ status: 'ready' }));
  });
  return { ...started, limiter };
}

const as = (client: string) => ({ headers: { 'x-client': client } });

test('a client over its limit gets 429 + Retry-After; another client is unaffected; headers on every response', async () => {
  const { app, url, limiter } = await limitedApp({ defaultRule: { limit: 3, windowMs: 60_000 } });
  try {
    for (let i = 0; i < 3; i++) {
      const ok = await call(`${url}/prices/ACME`, as('alice'));
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('ratelimit-limit'), '3');
      assert.equal(ok.headers.get('ratelimit-remaining'), String(2 - i));
      assert.ok(Number(ok.headers.get('ratelimit-reset')) > 0);
      assert.equal(ok.headers.get('ratelimit-policy'), '3;w=60');
    }
    const limited = await call(`${url}/prices/ACME`, as('alice'));
    assert.equal(limited.status, 429);
    assert.match(limited.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.equal(limited.body.code, 'rate_limited');
    assert.equal(limited.body.status, 429);
    const retryAfter = Number(limited.headers.get('retry-after'));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 20, `Retry-After ${retryAfter}`);
    assert.equal(limited.headers.get('ratelimit-remaining'), '0');

    const bob = await call(`${url}/prices/ACME`, as('bob'));
    assert.equal(bob.status, 200, 'bob has his own quota');
    assert.equal(bob.headers.get('ratelimit-remaining'), '2');

    const anonymous = await call(`${url}/prices/ACME`);
    assert.equal(anonymous.status, 200, 'an anonymous client is keyed by IP, separately from alice');

    const health = await call(`${url}/health/ready`, as('alice'));
    assert.equal(health.status, 200, 'health is exempt');
    assert.equal(health.headers.get('ratelimit-limit'), null);
    assert.deepEqual(limiter.stats(), { store: 'memory', allowed: 5, limited: 1, failedOpen: 0 });
  } finally {
    await app.close();
  }
});

test('route groups have their own rule and quota', async () => {
  const { app, url } = await limitedApp({
    defaultRule: { limit: 100, windowMs: 60_000 },
    groups: [{ name: 'orders', routes: ['POST /orders'], limit: 1, windowMs: 60_000 }],
  });
  try {
    assert.equal((await call(`${url}/orders`, { method: 'POST', ...as('carol') })).status, 200);
    const second = await call(`${url}/orders`, { method: 'POST', ...as('carol') });
    assert.equal(second.status, 429);
    assert.equal(second.headers.get('ratelimit-policy'), '1;w=60');
    const read = await call(`${url}/prices/X`, as('carol'));
    assert.equal(read.status, 200, 'other routes draw on the default quota');
    assert.equal(read.headers.get('ratelimit-limit'), '100');
  } finally {
    await app.close();
  }
});

test('defaultRule false leaves routes outside groups unlimited and without headers', async () => {
  const { app, url } = await limitedApp({ defaultRule: false, groups: [{ name: 'orders', routes: ['POST /orders'], limit: 5, windowMs: 1000 }] });
  try {
    const read = await call(`${url}/prices/X`);
    assert.equal(read.status, 200);
    assert.equal(read.headers.get('ratelimit-limit'), null);
  } finally {
    await app.close();
  }
});

test('two app instances on one Redis store share the limit', async (t) => {
  if (!(await reachable(6379))) {
    t.skip('Redis is not reachable at 127.0.0.1:6379; skipping the shared-limit test');
    return;
  }
  const prefix = `simplebank:test:${randomUUID()}:`;
  const stores = [createRedisRateLimitStore({ url: 'redis://127.0.0.1:6379', prefix }), createRedisRateLimitStore({ url: 'redis://127.0.0.1:6379', prefix })];
  await Promise.all(stores.map((s) => s.ready()));
  const one = await limitedApp({ store: stores[0]!, defaultRule: { limit: 4, windowMs: 60_000 } });
  const two = await limitedApp({ store: stores[1]!, defaultRule: { limit: 4, windowMs: 60_000 } });
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await call(`${(i % 2 ? one : two).url}/prices/X`, as('dave'))).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429]);
    assert.equal((await call(`${one.url}/prices/X`, as('erin'))).status, 200);
  } finally {
    await one.app.close(); // closes its store too
    await two.app.close();
  }
});
