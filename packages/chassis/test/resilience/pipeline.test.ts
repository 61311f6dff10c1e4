import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CallInfo, ClientPolicy } from '../../src/client/client.ts';
import { createResiliencePipeline, noopPolicy } from '../../src/resilience/index.ts';
import { call, httpError, idle } from './helpers.ts';

/** Composes like client.ts: outermost first. */
const compose = <T>(policies: ClientPolicy[], attempt: (s: AbortSignal) => Promise<T>, info: CallInfo = call()) =>
  policies.reduceRight<(s: AbortSignal) => Promise<T>>((next, p) => (s) => p.execute(next, info, s), attempt)(idle());

test('policies in order: bulkhead → retry → breaker (+ total timeout outermost when set)', () => {
  const p = createResiliencePipeline('dep');
  assert.deepEqual(p.policies, [p.bulkhead, p.retry, p.breaker]);
  const timed = createResiliencePipeline('dep', { totalTimeoutMs: 1000 });
  assert.equal(timed.policies.length, 4);
  assert.equal(timed.policies[1], timed.bulkhead);
  const bare = createResiliencePipeline('dep', { bulkheadEnabled: false, breakerEnabled: false, retryAttempts: 1 });
  assert.deepEqual(bare.policies, []);
});

test('a call holds one bulkhead slot across its retries; the breaker sees each attempt', async () => {
  const p = createResiliencePipeline('dep', { retryBaseDelayMs: 1, breakerMinThroughput: 3, bulkheadMaxConcurrent: 1, bulkheadMaxQueue: 0 }, { random: () => 0 });
  let attempts = 0;
  const inUse: number[] = [];
  await assert.rejects(
    compose(p.policies, async () => {
      attempts++;
      inUse.push(p.bulkhead.stats().inUse);
      throw httpError(503);
    }),
    { status: 503 },
  );
  assert.equal(attempts, 3);
  assert.deepEqual(inUse, [1, 1, 1]);
  assert.equal(p.breaker.state.status, 'open', '3 failed attempts of 3');
  // Open circuit: the next call is rejected at once and not retried.
  await assert.rejects(compose(p.policies, async () => attempts++), { kind: 'rejected', code: 'circuit_open' });
  assert.equal(attempts, 3);
  const stats = p.stats();
  assert.equal(stats.breaker.status, 'open');
  assert.equal(stats.budget.attempts, 2);
  assert.equal(stats.budget.retries, 2);
  assert.equal(stats.retry.retries, 2);
  assert.equal(stats.bulkhead.inUse, 0);
});

test('noopPolicy just runs the attempt', async () => {
  assert.equal(await compose([noopPolicy], async () => 42), 42);
});
