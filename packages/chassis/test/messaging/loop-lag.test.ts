import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventLoopLagMs, eventLoopLagTicking } from '../../src/messaging/loop-lag.ts';

/** Holds the event loop for `ms` (a handler doing synchronous work). */
function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

async function waitUntil(what: string, cond: () => boolean, withinMs = 5_000): Promise<void> {
  const deadline = performance.now() + withinMs;
  while (!cond()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

test('a loop held up shows lag, and the ticker keeps measuring it while unread', async () => {
  assert.equal(eventLoopLagMs(), 0, 'the first read starts the ticker from zero');
  assert.equal(eventLoopLagTicking(), true);
  await sleep(50);
  // Nobody reads during the stalls (a worker busy with its handlers does not): the ticker must not stop meanwhile.
  for (let i = 0; i < 5; i++) {
    block(60);
    await sleep(0);
  }
  // More than the idle stop (250 ms) has passed without a read, but the loop is behind: still ticking, lag seen.
  await sleep(15);
  assert.ok(eventLoopLagTicking(), 'still ticking: the lag has not settled yet');
  const lag = eventLoopLagMs();
  assert.ok(lag > 5, `a loop stalled 60 ms at a time lags (read ${lag} ms)`);
});

test('an idle process stops ticking once the lag has settled and nobody reads it; a read starts it again', async () => {
  eventLoopLagMs();
  await waitUntil('the ticker stops', () => !eventLoopLagTicking());
  assert.equal(eventLoopLagMs(), 0, 'restarted from zero');
  assert.equal(eventLoopLagTicking(), true);
  // Reads keep it alive past the idle stop.
  for (let i = 0; i < 10; i++) {
    await sleep(50);
    eventLoopLagMs();
  }
  assert.equal(eventLoopLagTicking(), true, 'read every 50 ms: never idle long enough to stop');
});
