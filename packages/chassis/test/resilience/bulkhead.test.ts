import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contextFrom, runWithContext } from '../../src/trace/context.ts';
import { createBulkhead, isRejectedError } from '../../src/resilience/index.ts';
import { call, delay, idle } from './helpers.ts';

/** An attempt that stays in flight until released. */
function held<T>(value: T) {
  let release!: () => void;
  let started = false;
  const done = new Promise<void>((r) => (release = r));
  return {
    fn: async () => {
      started = true;
      await done;
      return value;
    },
    release: () => release(),
    started: () => started,
  };
}

test('rejects at once when slots and queue are full, and reports gauges', async () => {
  const bulkhead = createBulkhead('dep', { maxConcurrent: 2, maxQueue: 1 });
  const a = held('a');
  const b = held('b');
  const c = held('c');
  const pa = bulkhead.execute(a.fn, call(), idle());
  const pb = bulkhead.execute(b.fn, call(), idle());
  const pc = bulkhead.execute(c.fn, call(), idle());
  assert.deepEqual(bulkhead.stats(), { maxConcurrent: 2, maxQueue: 1, inUse: 2, queued: 1, rejected: 0 });
  let attempted = false;
  const err = await bulkhead.execute(async () => (attempted = true), call(), idle()).catch((e: unknown) => e);
  assert.equal(attempted, false);
  assert.ok(isRejectedError(err));
  assert.equal(err.code, 'bulkhead_full');
  assert.equal(err.name, 'UpstreamError');
  assert.equal(bulkhead.stats().rejected, 1);

  // Completion hands the slot to the oldest waiter.
  a.release();
  assert.equal(await pa, 'a');
  await delay(0);
  assert.equal(c.started(), true);
  assert.deepEqual({ inUse: bulkhead.stats().inUse, queued: bulkhead.stats().queued }, { inUse: 2, queued: 0 });
  b.release();
  c.release();
  assert.deepEqual(await Promise.all([pb, pc]), ['b', 'c']);
  assert.deepEqual({ inUse: bulkhead.stats().inUse, queued: bulkhead.stats().queued }, { inUse: 0, queued: 0 });
});

test('a failing attempt releases its slot', async () => {
  const bulkhead = createBulkhead('dep', { maxConcurrent: 1, maxQueue: 0 });
  await assert.rejects(bulkhead.execute(async () => {
    throw new Error('boom');
  }, call(), idle()), /boom/);
  assert.equal(bulkhead.stats().inUse, 0);
  assert.equal(await bulkhead.execute(async () => 1, call(), idle()), 1);
});

test('an aborted waiter leaves the queue at once; an aborted running call frees its slot', async () => {
  const bulkhead = createBulkhead('dep', { maxConcurrent: 1, maxQueue: 1 });
  const running = new AbortController();
  const first = bulkhead.execute((s) => new Promise((_r, reject) => s.addEventListener('abort', () => reject(new Error('aborted in flight')))), call(), running.signal);
  const waiting = new AbortController();
  let waiterRan = false;
  const second = bulkhead.execute(async () => (waiterRan = true), call(), waiting.signal);
  assert.equal(bulkhead.stats().queued, 1);
  waiting.abort(new Error('caller gave up'));
  await assert.rejects(second, /caller gave up/);
  assert.equal(bulkhead.stats().queued, 0, 'the queue slot is free again');

  running.abort();
  await assert.rejects(first, /aborted in flight/);
  assert.equal(waiterRan, false);
  assert.equal(bulkhead.stats().inUse, 0);
  const already = new AbortController();
  already.abort(new Error('before start'));
  await assert.rejects(bulkhead.execute(async () => 1, call(), already.signal), /before start/);
  assert.equal(bulkhead.stats().inUse, 0);
});

test('a waiter stops waiting when the WorkContext deadline passes', async () => {
  const bulkhead = createBulkhead('dep', { maxConcurrent: 1, maxQueue: 4 });
  const a = held('a');
  const pa = bulkhead.execute(a.fn, call(), idle());
  const ctx = { ...contextFrom({}), deadline: Date.now() + 10 };
  await assert.rejects(runWithContext(ctx, () => bulkhead.execute(async () => 'late', call(), idle())), { name: 'UpstreamError', kind: 'timeout' });
  assert.equal(bulkhead.stats().queued, 0);
  a.release();
  await pa;
});
