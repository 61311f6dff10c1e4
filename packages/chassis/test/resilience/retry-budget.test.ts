import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRetryBudget, createRetryPolicy } from '../../src/resilience/index.ts';
import { call, httpError, idle } from './helpers.ts';

test('under 100 % failure, retries add at most 20 % on top of first attempts (counted)', async () => {
  const now = 50_000;
  const budget = createRetryBudget({ ratio: 0.2, minRetriesPerSecond: 0, now: () => now });
  const policy = createRetryPolicy({ baseDelayMs: 0, maxAttempts: 3, budget });
  let attempts = 0;
  const failing = async (): Promise<never> => {
    attempts++;
    throw httpError(503);
  };
  for (let i = 0; i < 1000; i++) await assert.rejects(policy.execute(failing, call(), idle()));
  const stats = budget.stats();
  assert.equal(stats.attempts, 1000);
  assert.equal(attempts, stats.attempts + stats.retries);
  assert.ok(attempts <= 1.2 * 1000, `${attempts} attempts for 1000 calls`);
  // The budget is used, not just refused: without it 3000 attempts would have been made.
  assert.ok(stats.retries >= 190, `only ${stats.retries} retries`);
  assert.ok(stats.budgetExhausted > 0);
});

test('the per-second floor lets low traffic retry', () => {
  const budget = createRetryBudget({ ratio: 0.2, windowMs: 10_000, minRetriesPerSecond: 1, now: () => 0 });
  budget.recordAttempt();
  // 20 % of 1 attempt is 0.2 retries, but the floor grants 1/s × 10 s.
  for (let i = 0; i < 10; i++) assert.equal(budget.tryAcquireRetry(), true, `retry ${i}`);
  assert.equal(budget.tryAcquireRetry(), false);
  assert.deepEqual(budget.stats(), { attempts: 1, retries: 10, budgetExhausted: 1, windowAttempts: 1, windowRetries: 10 });
});

test('the floor does not add to the ratio at high traffic', () => {
  const budget = createRetryBudget({ ratio: 0.2, windowMs: 10_000, minRetriesPerSecond: 1, now: () => 0 });
  for (let i = 0; i < 1000; i++) budget.recordAttempt();
  let granted = 0;
  while (budget.tryAcquireRetry()) granted++;
  assert.equal(granted, 200);
});

test('the window slides: old attempts and retries stop counting', () => {
  let now = 0;
  const budget = createRetryBudget({ ratio: 0.5, windowMs: 1000, buckets: 10, minRetriesPerSecond: 0, now: () => now });
  for (let i = 0; i < 10; i++) budget.recordAttempt();
  let granted = 0;
  while (budget.tryAcquireRetry()) granted++;
  assert.equal(granted, 5);
  now = 500; // half a window later, still inside
  assert.equal(budget.tryAcquireRetry(), false);
  now = 1000; // the first bucket (attempts and retries) has left the window
  assert.equal(budget.stats().windowAttempts, 0);
  assert.equal(budget.tryAcquireRetry(), false, 'no attempts in the window earn no retries');
  for (let i = 0; i < 4; i++) budget.recordAttempt();
  assert.equal(budget.tryAcquireRetry(), true);
  assert.equal(budget.tryAcquireRetry(), true);
  assert.equal(budget.tryAcquireRetry(), false);
});
