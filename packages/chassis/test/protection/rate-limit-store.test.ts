import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createMemoryRateLimitStore, gcra, type RateLimitRule } from '../../src/protection/rate-limit-store.ts';
import { createRedisRateLimitStore } from '../../src/protection/rate-limit-redis-store.ts';
import { createRateLimiter } from '../../src/protection/rate-limit.ts';
import { reachable, recordingLog } from './helpers.ts';

const rule: RateLimitRule = { limit: 3, windowMs: 3_000 }; // one request per second, bursts of 3

test('gcra: a full burst, then one request per interval', () => {
  let tat: number | undefined;
  const take = (now: number) => {
    const r = gcra(tat, now, rule);
    tat = r.tat;
    return r.decision;
  };
  assert.deepEqual(take(0), { allowed: true, limit: 3, remaining: 2, resetMs: 1000, retryAfterMs: 0 });
  assert.equal(take(0).remaining, 1);
  assert.deepEqual(take(0), { allowed: true, limit: 3, remaining: 0, resetMs: 3000, retryAfterMs: 0 });
  assert.deepEqual(take(0), { allowed: false, limit: 3, remaining: 0, resetMs: 3000, retryAfterMs: 1000 });
  assert.equal(take(400).retryAfterMs, 600, 'the refusal did not use up quota');
  assert.equal(take(1000).allowed, true, 'one interval later one more is allowed');
  assert.equal(take(1000).allowed, false);
  assert.deepEqual(take(10_000), { allowed: true, limit: 3, remaining: 2, resetMs: 1000, retryAfterMs: 0 }, 'an idle client is back to a full bucket');
});

test('gcra: fractional intervals leave exactly 0, never a negative remaining', () => {
  const r3: RateLimitRule = { limit: 3, windowMs: 1000 };
  let tat: number | undefined;
  const seen: number[] = [];
  for (let i = 0; i < 4; i++) {
    const r = gcra(tat, 5, r3);
    tat = r.tat;
    seen.push(r.decision.allowed ? r.decision.remaining : -1);
  }
  assert.deepEqual(seen, [2, 1, 0, -1]);
});

test('memory store: keys are independent; memory is bounded by maxKeys', async () => {
  let now = 0;
  const store = createMemoryRateLimitStore({ maxKeys: 2, now: () => now });
  for (let i = 0; i < 3; i++) assert.equal((await store.consume('a', rule)).allowed, true);
  assert.equal((await store.consume('a', rule)).allowed, false);
  assert.equal((await store.consume('b', rule)).allowed, true, 'another client is unaffected');
  await store.consume('c', rule);
  assert.equal(store.size(), 2, 'the stalest key was dropped');
  now = 10_000;
  assert.equal((await store.consume('a', rule)).remaining, 2);
  await store.close();
});

test('limiter: a failing store fails open and warns once per interval', async () => {
  const log = recordingLog();
  const limiter = createRateLimiter({
    store: { kind: 'broken', consume: () => Promise.reject(new Error('down')), close: () => Promise.resolve() },
    log,
    warnIntervalMs: 60_000,
  });
  for (let i = 0; i < 5; i++) assert.equal(await limiter.check('GET /x', 'ip:1'), undefined);
  assert.equal(limiter.stats().failedOpen, 5);
  assert.equal(log.warnings.length, 1);
  assert.match(log.warnings[0]!.msg, /fail open/);
});

test('redis store: instances share one quota per client (atomic Lua)', async (t) => {
  if (!(await reachable(6379))) {
    t.skip('Redis is not reachable at 127.0.0.1:6379; skipping the Redis store test');
    return;
  }
  const prefix = `simplebank:test:${randomUUID()}:`;
  const a = createRedisRateLimitStore({ url: 'redis://127.0.0.1:6379', prefix });
  const b = createRedisRateLimitStore({ url: 'redis://127.0.0.1:6379', prefix });
  try {
    await Promise.all([a.ready(), b.ready()]);
    const wide: RateLimitRule = { limit: 10, windowMs: 60_000 };
    // 20 concurrent requests over two "gateway instances": exactly the limit gets through.
    const decisions = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).consume('client-1', wide)));
    assert.equal(decisions.filter((d) => d.allowed).length, 10);
    const refused = decisions.find((d) => !d.allowed)!;
    assert.equal(refused.remaining, 0);
    assert.ok(refused.retryAfterMs > 0 && refused.retryAfterMs <= 6_000, `retry after ${refused.retryAfterMs} ms`);
    assert.deepEqual(
      decisions.filter((d) => d.allowed).map((d) => d.remaining).sort((x, y) => x - y),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    const other = await a.consume('client-2', wide);
    assert.equal(other.allowed, true, 'another client is unaffected');
    assert.equal(other.remaining, 9);
  } finally {
    await a.close();
    await b.close();
  }
});

test('redis store: unreachable Redis fails open through the limiter, with a throttled warning', async () => {
  const log = recordingLog();
  // Port 1 on loopback: nothing listens, connections are refused at once.
  const store = createRedisRateLimitStore({ url: 'redis://127.0.0.1:1', log, warnIntervalMs: 60_000 });
  const limiter = createRateLimiter({ store, log, warnIntervalMs: 60_000 });
  try {
    for (let i = 0; i < 5; i++) assert.equal(await limiter.check('GET /x', 'ip:1'), undefined, 'allowed');
    assert.equal(limiter.stats().failedOpen, 5);
    assert.ok(log.warnings.length >= 1 && log.warnings.length <= 2, `${log.warnings.length} warnings (store + limiter, each at most once)`);
  } finally {
    await limiter.close();
  }
});
