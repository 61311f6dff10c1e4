import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createStaleCache, withFallback } from '../../src/resilience/index.ts';
import { httpError } from './helpers.ts';

test('withFallback answers with the fallback on dependency failures only', async () => {
  assert.equal(await withFallback(async () => 'live', () => 'default'), 'live');
  assert.equal(await withFallback(async () => {
    throw httpError(503);
  }, (err) => `degraded after ${(err as { status: number }).status}`), 'degraded after 503');
  await assert.rejects(withFallback(async () => {
    throw new TypeError('bug');
  }, () => 'hidden'), TypeError);
  assert.equal(await withFallback(async () => {
    throw new TypeError('bug');
  }, async () => 'any', { when: () => true }), 'any');
});

test('stale cache: fresh within ttl, reloads after, serves stale on failure up to maxStaleMs, then rethrows', async () => {
  let now = 0;
  const cache = createStaleCache<string, number>({ ttlMs: 100, maxStaleMs: 1000, maxEntries: 10, now: () => now });
  let loads = 0;
  const good = async () => ++loads;
  const bad = async (): Promise<number> => {
    throw httpError(503);
  };

  assert.deepEqual(await cache.get('AAPL', good), { value: 1, stale: false, ageMs: 0 });
  now = 50;
  assert.deepEqual(await cache.get('AAPL', good), { value: 1, stale: false, ageMs: 50 });
  assert.equal(loads, 1);
  now = 150;
  assert.deepEqual(await cache.get('AAPL', good), { value: 2, stale: false, ageMs: 0 });
  now = 300;
  assert.deepEqual(await cache.get('AAPL', bad), { value: 2, stale: true, ageMs: 150 });
  now = 150 + 1100; // exactly ttl + maxStale old: still served
  assert.deepEqual(await cache.get('AAPL', bad), { value: 2, stale: true, ageMs: 1100 });
  now += 1;
  await assert.rejects(cache.get('AAPL', bad), { status: 503 });
  await assert.rejects(cache.get('MSFT', bad), { status: 503 }, 'nothing cached: the error');
});

test('stale cache: concurrent gets share one load; a synchronous throw does not wedge the key', async () => {
  const cache = createStaleCache<string, number>({ ttlMs: 0 });
  let loads = 0;
  let release!: (n: number) => void;
  const slow = () => {
    loads++;
    return new Promise<number>((r) => (release = r));
  };
  const a = cache.get('k', slow);
  const b = cache.get('k', slow);
  await Promise.resolve();
  release(7);
  assert.deepEqual((await Promise.all([a, b])).map((r) => r.value), [7, 7]);
  assert.equal(loads, 1);

  const throwsNow = (): Promise<number> => {
    throw new Error('sync');
  };
  const fresh = createStaleCache<string, number>();
  await assert.rejects(fresh.get('x', throwsNow), /sync/);
  assert.equal((await fresh.get('x', async () => 1)).value, 1);
});

test('stale cache: evicts the least recently used beyond maxEntries', async () => {
  const cache = createStaleCache<string, string>({ ttlMs: 1000, maxEntries: 2 });
  await cache.get('a', async () => 'A');
  await cache.get('b', async () => 'B');
  await cache.get('a', async () => 'A2'); // touch a: b is now the oldest
  await cache.get('c', async () => 'C');
  assert.equal(cache.size, 2);
  assert.equal(cache.peek('b'), undefined);
  assert.equal(cache.peek('a')?.value, 'A');
  assert.equal(cache.delete('a'), true);
  cache.clear();
  assert.equal(cache.size, 0);
});
