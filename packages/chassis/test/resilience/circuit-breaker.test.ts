import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUpstreamError } from '../../src/client/errors.ts';
import { createCircuitBreaker, isRejectedError, type BreakerStateChange } from '../../src/resilience/index.ts';
import { call, connectionError, delay, httpError, idle, sequence } from './helpers.ts';

const ok = async () => 'ok';
const fail = async (): Promise<never> => {
  throw httpError(503);
};

/** Read through a function: assert.equal narrows `breaker.state.status`, and the state changes under TS's feet. */
const statusOf = (breaker: ReturnType<typeof createCircuitBreaker>): string => breaker.state.status;

async function run(breaker: ReturnType<typeof createCircuitBreaker>, fn: () => Promise<unknown>, times: number): Promise<void> {
  for (let i = 0; i < times; i++) await breaker.execute(fn, call(), idle()).catch(() => undefined);
}

test('does not open below the minimum throughput, however bad the rate', async () => {
  const breaker = createCircuitBreaker('dep', { minThroughput: 20 });
  await run(breaker, fail, 19);
  assert.equal(breaker.state.status, 'closed');
});

test('opens when more than the threshold failed with the minimum throughput, then fails fast', async () => {
  const breaker = createCircuitBreaker('dep', { threshold: 0.5, minThroughput: 20, halfOpenAfterMs: 60_000 });
  await run(breaker, ok, 9);
  await run(breaker, fail, 10);
  assert.equal(breaker.state.status, 'closed', '10 of 19: below the minimum throughput');
  await run(breaker, fail, 1);
  assert.equal(breaker.state.status, 'open', '11 of 20 failed');

  let attempted = 0;
  const err = await breaker.execute(async () => ++attempted, call(), idle()).catch((e: unknown) => e);
  assert.equal(attempted, 0, 'fails fast: the attempt is not made');
  assert.equal(isUpstreamError(err), true, 'isUpstreamError recognises it');
  assert.ok(isRejectedError(err));
  assert.equal(err.name, 'UpstreamError');
  assert.equal(err.kind, 'rejected');
  assert.equal(err.code, 'circuit_open');
  assert.equal(err.service, 'dep');
  assert.equal(err.operation, 'op');
  // 60 s ± 20 % jitter: at least 48 s away.
  assert.ok(err.retryAfterMs !== undefined && err.retryAfterMs > 45_000, `retryAfterMs ${err.retryAfterMs}`);
});

test('4xx answers count as successes, connection failures and timeouts as failures', async () => {
  const breaker = createCircuitBreaker('dep', { minThroughput: 10 });
  await run(breaker, async () => {
    throw httpError(404);
  }, 30);
  await run(breaker, async () => {
    throw httpError(429);
  }, 10);
  await run(breaker, async () => {
    throw connectionError();
  }, 30);
  assert.equal(breaker.state.status, 'closed', '30 of 70 failed');
  await run(breaker, async () => {
    throw connectionError();
  }, 11);
  assert.equal(breaker.state.status, 'open', '41 of 81 failed');
});

test('the 4xx passes through to the caller unchanged', async () => {
  const breaker = createCircuitBreaker('dep');
  const notFound = httpError(404);
  await assert.rejects(breaker.execute(async () => {
    throw notFound;
  }, call(), idle()), (e) => e === notFound);
});

test('half-opens after the jittered delay; a successful probe closes it; a failed one re-opens it', async () => {
  // random 0 → delay × 0.8, random 1 → × 1.2: the jitter bounds.
  const breaker = createCircuitBreaker('dep', { minThroughput: 1, halfOpenAfterMs: 25, halfOpenJitter: 0.2, random: sequence(0, 0.99999) });
  const changes: BreakerStateChange[] = [];
  breaker.onStateChange((c) => changes.push(c));
  await run(breaker, fail, 1);
  const opened = breaker.state;
  assert.equal(opened.status, 'open');
  assert.ok(opened.status === 'open' && Math.abs(opened.halfOpenAt - opened.since - 20) < 1e-6, 'first opening: 25 × 0.8');

  await delay(30);
  await assert.rejects(breaker.execute(fail, call(), idle()), { status: 503 }, 'the probe runs and fails');
  const reopened = breaker.state;
  assert.ok(reopened.status === 'open' && Math.abs(reopened.halfOpenAt - reopened.since - 30) < 1e-3, 'second opening: 25 × 1.2');

  await delay(35);
  assert.equal(await breaker.execute(ok, call(), idle()), 'ok');
  assert.equal(breaker.state.status, 'closed');
  assert.deepEqual(
    changes.map((c) => `${c.from}→${c.to.status}`),
    ['closed→open', 'open→half-open', 'half-open→open', 'open→half-open', 'half-open→closed'],
  );
  assert.ok(changes.every((c) => c.dependency === 'dep' && !c.manual));
  const first = changes[0]!.to;
  const reason = first.status === 'open' ? first.reason : undefined;
  assert.equal((reason as { status?: number }).status, 503, 'the opening names its cause');
});

test('calls arriving during the probe wait for it and then run', async () => {
  const breaker = createCircuitBreaker('dep', { minThroughput: 1, halfOpenAfterMs: 0, halfOpenJitter: 0 });
  await run(breaker, fail, 1);
  let release!: () => void;
  const probe = breaker.execute(() => new Promise<string>((r) => (release = () => r('probe'))), call(), idle());
  assert.equal(breaker.state.status, 'half-open');
  const waiting = breaker.execute(ok, call(), idle());
  release();
  assert.deepEqual(await Promise.all([probe, waiting]), ['probe', 'ok']);
  assert.equal(breaker.state.status, 'closed');
});

test('an aborted probe re-opens the circuit rather than closing it', async () => {
  const breaker = createCircuitBreaker('dep', { minThroughput: 1, halfOpenAfterMs: 0, halfOpenJitter: 0 });
  await run(breaker, fail, 1);
  const controller = new AbortController();
  const probe = breaker.execute((s) => new Promise((_r, reject) => s.addEventListener('abort', () => reject(connectionError()))), call(), controller.signal);
  controller.abort();
  await assert.rejects(probe, { kind: 'connection' });
  assert.equal(breaker.state.status, 'open');
});

test('an aborted call while closed does not count as a failure', async () => {
  const breaker = createCircuitBreaker('dep', { minThroughput: 1 });
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(breaker.execute(async () => {
    throw connectionError();
  }, call(), controller.signal));
  assert.equal(breaker.state.status, 'closed');
});

test('manual trip holds it open (isolated) until reset; events say manual', async () => {
  const breaker = createCircuitBreaker('dep');
  const changes: BreakerStateChange[] = [];
  const off = breaker.onStateChange((c) => changes.push(c));
  breaker.trip();
  breaker.trip(); // idempotent
  assert.equal(breaker.state.status, 'isolated');
  await assert.rejects(breaker.execute(ok, call(), idle()), { kind: 'rejected', code: 'circuit_open' });
  breaker.reset();
  assert.equal(breaker.state.status, 'closed');
  assert.equal(await breaker.execute(ok, call(), idle()), 'ok');
  assert.deepEqual(changes.map((c) => [c.from, c.to.status, c.manual]), [
    ['closed', 'isolated', true],
    ['isolated', 'closed', true],
  ]);
  off();
  breaker.trip();
  assert.equal(changes.length, 2, 'unsubscribed');
});

test('reset closes a circuit that opened on failures, and forgets the history', async () => {
  const breaker = createCircuitBreaker('dep', { minThroughput: 2, halfOpenAfterMs: 60_000 });
  await run(breaker, fail, 2);
  assert.equal(breaker.state.status, 'open');
  breaker.reset();
  assert.equal(statusOf(breaker), 'closed');
  await run(breaker, fail, 1);
  assert.equal(statusOf(breaker), 'closed', 'one failure after reset is below the minimum throughput');
});

test('a throwing listener does not break the call', async () => {
  const breaker = createCircuitBreaker('dep', { minThroughput: 1 });
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  breaker.onStateChange(() => {
    throw new Error('metrics down');
  });
  await assert.rejects(breaker.execute(fail, call(), idle()), { status: 503 });
  assert.equal(breaker.state.status, 'open');
  await delay(1);
  process.off('warning', onWarning);
  assert.ok(warnings.some((w) => w.includes('metrics down')));
});

test('a call that started while closed and fails while the probe is out re-opens the circuit, as in cockatiel', async () => {
  const breaker = createCircuitBreaker('dep', { minThroughput: 2, halfOpenAfterMs: 0, halfOpenJitter: 0 });
  const changes: string[] = [];
  breaker.onStateChange((c) => changes.push(`${c.from}→${c.to.status}`));
  let failStraggler!: () => void;
  const straggler = breaker.execute((_s) => new Promise<string>((_r, reject) => (failStraggler = () => reject(connectionError()))), call(), idle());
  await run(breaker, fail, 2);
  assert.equal(statusOf(breaker), 'open', '2 of 2 failed');
  let release!: () => void;
  const probe = breaker.execute(() => new Promise<string>((r) => (release = () => r('probe'))), call(), idle());
  assert.equal(statusOf(breaker), 'half-open');
  failStraggler();
  await assert.rejects(straggler, { kind: 'connection' });
  assert.equal(statusOf(breaker), 'open', "the straggler's failure counts (3 of 3) and opens the circuit again");
  release();
  assert.equal(await probe, 'probe');
  assert.equal(statusOf(breaker), 'open', 'the probe does not close a circuit that re-opened meanwhile');
  assert.deepEqual(changes, ['closed→open', 'open→half-open', 'half-open→open']);
});

test('calls in flight when the circuit opens or is tripped still count, and still end as they would', async () => {
  const breaker = createCircuitBreaker('dep', { minThroughput: 4, halfOpenAfterMs: 60_000 });
  const release: ((fail: boolean) => void)[] = [];
  const inFlight = Array.from({ length: 3 }, () =>
    breaker.execute((_s) => new Promise<string>((resolve, reject) => release.push((f) => (f ? reject(connectionError()) : resolve('late')))), call(), idle()),
  );
  await run(breaker, fail, 3);
  assert.equal(statusOf(breaker), 'closed', '3 of 3 failed, below the minimum throughput');
  release[0]!(true);
  await assert.rejects(inFlight[0]!, { kind: 'connection' });
  assert.equal(statusOf(breaker), 'open', 'the 4th failure, of a call that started while closed, opens it');
  release[1]!(false);
  assert.equal(await inFlight[1]!, 'late');
  breaker.reset();
  const more = breaker.execute((_s) => new Promise<string>((resolve) => release.push(() => resolve('after trip'))), call(), idle());
  breaker.trip();
  assert.equal(statusOf(breaker), 'isolated');
  release[3]!(false);
  assert.equal(await more, 'after trip', 'a call let through before the trip completes');
  release[2]!(true);
  await assert.rejects(inFlight[2]!, { kind: 'connection' });
  assert.equal(statusOf(breaker), 'isolated', 'a late failure does not change a held-open circuit');
  breaker.reset();
  assert.equal(statusOf(breaker), 'closed');
});
