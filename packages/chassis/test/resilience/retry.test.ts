import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runWithContext, contextFrom } from '../../src/trace/context.ts';
import { createRetryBudget, createRetryPolicy, fullJitterDelay, type RetryEvent } from '../../src/resilience/index.ts';
import { call, connectionError, delay, httpError, idle, scripted, sequence, timeoutError } from './helpers.ts';

test('full jitter: delay is uniform in [0, min(cap, base·2^(n-1))]', () => {
  assert.equal(fullJitterDelay(1, 100, 1000, () => 0), 0);
  assert.equal(fullJitterDelay(1, 100, 1000, () => 0.999), 99.9);
  assert.equal(fullJitterDelay(3, 100, 1000, () => 0.5), 200); // 100·2² = 400, half of it
  assert.equal(fullJitterDelay(10, 100, 1000, () => 0.5), 500); // capped at 1000
  for (let n = 1; n <= 12; n++) {
    for (const r of [0, 0.25, 0.5, 0.9999]) {
      const d = fullJitterDelay(n, 10, 640, () => r);
      assert.ok(d >= 0 && d < Math.min(640, 10 * 2 ** (n - 1)), `retry ${n} r ${r} → ${d}`);
    }
  }
});

test('retries connection, timeout, 502/503/504 and 429 failures up to maxAttempts (3 by default)', async () => {
  for (const err of [connectionError(), timeoutError(), httpError(502), httpError(503), httpError(504), httpError(429)]) {
    const policy = createRetryPolicy({ baseDelayMs: 1, random: () => 0 });
    const attempt = scripted([err, err]);
    assert.equal(await policy.execute(attempt.fn, call(), idle()), 'ok');
    assert.equal(attempt.calls(), 3);
  }
  const policy = createRetryPolicy({ baseDelayMs: 1, random: () => 0 });
  const always = scripted([httpError(503), httpError(503), httpError(503), httpError(503)]);
  await assert.rejects(policy.execute(always.fn, call(), idle()), { status: 503 });
  assert.equal(always.calls(), 3);
});

test('never retries a call that is not retryable (non-idempotent, no idempotency key)', async () => {
  const policy = createRetryPolicy({ baseDelayMs: 1 });
  const attempt = scripted([httpError(503)]);
  await assert.rejects(policy.execute(attempt.fn, call(false), idle()), { status: 503 });
  assert.equal(attempt.calls(), 1);
});

test('never retries 4xx (except 429), 500, contract violations or non-upstream errors', async () => {
  const invalid = Object.assign(httpError(200), { kind: 'invalid_response' });
  for (const err of [httpError(400), httpError(404), httpError(409), httpError(500), invalid, new TypeError('bug')]) {
    const policy = createRetryPolicy({ baseDelayMs: 1 });
    const attempt = scripted([err]);
    await assert.rejects(policy.execute(attempt.fn, call(), idle()));
    assert.equal(attempt.calls(), 1, String(err));
  }
});

test('429 with Retry-After: waits at least that long; longer than maxRetryAfterMs: gives up at once', async () => {
  const events: RetryEvent[] = [];
  const policy = createRetryPolicy({ baseDelayMs: 1, random: () => 0, onRetry: (e) => events.push(e) });
  const attempt = scripted([httpError(429, { retryAfterMs: 30 })]);
  assert.equal(await policy.execute(attempt.fn, call(), idle()), 'ok');
  assert.equal(events.length, 1);
  assert.equal(events[0]!.delayMs, 30);

  // Also read from the problem body (`retryAfter` seconds) and from raw headers, until UpstreamError carries it.
  const fromProblem = scripted([httpError(429, { problem: { retryAfter: 0.01 } })]);
  const fromHeader = scripted([httpError(503, { headers: { 'retry-after': '0' } })]);
  events.length = 0;
  await policy.execute(fromProblem.fn, call(), idle());
  await policy.execute(fromHeader.fn, call(), idle());
  assert.deepEqual(events.map((e) => e.delayMs), [10, 0]);

  const tooLong = createRetryPolicy({ maxRetryAfterMs: 1000 });
  const slow = scripted([httpError(429, { retryAfterMs: 120_000 })]);
  await assert.rejects(tooLong.execute(slow.fn, call(), idle()), { status: 429 });
  assert.equal(slow.calls(), 1);
  assert.equal(tooLong.stats().retryAfterTooLong, 1);
});

test('never sleeps or starts an attempt past the WorkContext deadline', async () => {
  const events: RetryEvent[] = [];
  let now = 1_000_000;
  const policy = createRetryPolicy({ baseDelayMs: 100, maxAttempts: 10, minAttemptMs: 20, random: () => 0.999, now: () => now, onRetry: (e) => events.push(e) });
  const ctx = { ...contextFrom({}), deadline: now + 200 };
  // Each failure advances the fake clock as if the attempt had taken 10 ms.
  const attempt = async () => {
    now += 10;
    throw httpError(503);
  };
  const started: number[] = [];
  const err = await runWithContext(ctx, () =>
    policy.execute(
      async () => {
        started.push(now);
        return attempt();
      },
      call(),
      idle(),
    ),
  ).catch((e: unknown) => e);
  assert.equal((err as { status: number }).status, 503);
  // Delays ~100, then ~200 would end after the deadline: exactly one retry.
  assert.equal(events.length, 1);
  assert.equal(policy.stats().deadlineExceeded, 1);
  for (const e of events) assert.ok(e.delayMs + 20 <= ctx.deadline - 1_000_000);
  assert.equal(started.length, 2);
});

test('a deadline too close for even one more attempt means no retry', async () => {
  const policy = createRetryPolicy({ baseDelayMs: 1, random: () => 0, minAttemptMs: 50 });
  const attempt = scripted([connectionError()]);
  const ctx = { ...contextFrom({}), deadline: Date.now() + 30 };
  await assert.rejects(runWithContext(ctx, () => policy.execute(attempt.fn, call(), idle())), { kind: 'connection' });
  assert.equal(attempt.calls(), 1);
});

test('the retry budget stops retries; the attempt cap still applies', async () => {
  const budget = createRetryBudget({ ratio: 0, minRetriesPerSecond: 0 });
  const policy = createRetryPolicy({ baseDelayMs: 1, budget });
  const attempt = scripted([httpError(503)]);
  await assert.rejects(policy.execute(attempt.fn, call(), idle()), { status: 503 });
  assert.equal(attempt.calls(), 1);
  assert.equal(budget.stats().budgetExhausted, 1);
  assert.equal(policy.stats().budgetExhausted, 1);
});

test('aborting during the backoff rejects with the abort reason and clears the timer', async () => {
  const policy = createRetryPolicy({ baseDelayMs: 60_000, maxDelayMs: 60_000, random: sequence(0.5) });
  const controller = new AbortController();
  const attempt = scripted([connectionError()]);
  const pending = policy.execute(attempt.fn, call(), controller.signal);
  await delay(5);
  controller.abort(new Error('caller gave up'));
  await assert.rejects(pending, /caller gave up/);
  assert.equal(attempt.calls(), 1);
  // If the 30 s timer were still armed and ref'd, node:test would hang here instead of finishing.
});

test('the policy passes its signal to each attempt', async () => {
  const policy = createRetryPolicy({ baseDelayMs: 1 });
  const controller = new AbortController();
  const seen: AbortSignal[] = [];
  await policy.execute(async (s) => {
    seen.push(s);
    if (seen.length < 2) throw timeoutError();
    return 1;
  }, call(), controller.signal);
  assert.deepEqual(seen, [controller.signal, controller.signal]);
});
