import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contextFrom, currentContext, runWithContext } from '../../src/trace/context.ts';
import { createTotalTimeoutPolicy } from '../../src/resilience/index.ts';
import { call, idle } from './helpers.ts';

test('aborts the work and fails with a timeout UpstreamError when the total time is up', async () => {
  const policy = createTotalTimeoutPolicy({ timeoutMs: 10 });
  let innerSignal: AbortSignal | undefined;
  const err = await policy
    .execute((s) => {
      innerSignal = s;
      return new Promise((_r, reject) => s.addEventListener('abort', () => reject(new Error('socket closed'))));
    }, call(), idle())
    .catch((e: unknown) => e);
  assert.equal((err as { name: string }).name, 'UpstreamError');
  assert.equal((err as { kind: string }).kind, 'timeout');
  assert.equal(innerSignal?.aborted, true);
});

test('settles on time even if the work ignores the signal', async () => {
  const policy = createTotalTimeoutPolicy({ timeoutMs: 10 });
  let finish!: () => void;
  const pending = policy.execute(() => new Promise<void>((r) => (finish = r)), call(), idle());
  await assert.rejects(pending, { kind: 'timeout' });
  finish();
});

test('narrows the WorkContext deadline inside, never widens it', async () => {
  const policy = createTotalTimeoutPolicy({ timeoutMs: 1000 });
  const far = { ...contextFrom({}), deadline: Date.now() + 60_000 };
  const seen = await runWithContext(far, () => policy.execute(async () => currentContext()?.deadline, call(), idle()));
  assert.ok(seen !== undefined && seen <= Date.now() + 1000);
  const near = { ...contextFrom({}), deadline: Date.now() + 50 };
  assert.equal(await runWithContext(near, () => policy.execute(async () => currentContext()?.deadline, call(), idle())), near.deadline);
});

test('forwards the caller abort and passes results through', async () => {
  const policy = createTotalTimeoutPolicy({ timeoutMs: 1000 });
  assert.equal(await policy.execute(async () => 'ok', call(), idle()), 'ok');
  const controller = new AbortController();
  const pending = policy.execute((s) => new Promise((_r, reject) => s.addEventListener('abort', () => reject(s.reason))), call(), controller.signal);
  controller.abort(new Error('caller'));
  await assert.rejects(pending, /caller/);
});
