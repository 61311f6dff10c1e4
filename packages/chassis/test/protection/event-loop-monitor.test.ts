import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createEventLoopMonitor } from '../../src/protection/event-loop-monitor.ts';

/** Holds the event loop for `ms`, as a CPU-heavy task does. */
function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

test('long tasks with gaps shorter than the resolution between them are seen', async () => {
  // One sample per task, nothing in the gaps: a monitor that resets its histogram each window lost every sample
  // (the first after a reset only marks the time) and read 0 while the loop was behind nearly all the time.
  const monitor = createEventLoopMonitor({ windowMs: 250, resolutionMs: 20 });
  try {
    const seen: number[] = [];
    for (let i = 0; i < 8; i++) {
      block(300);
      await sleep(5);
      seen.push(monitor.delayMs());
    }
    // The first window is start-up and ignored; after that every window holds a ~300 ms sample.
    assert.ok(seen.slice(3).every((d) => d > 150), `delay per window: ${seen.map((d) => d.toFixed(0)).join(', ')} ms`);
  } finally {
    monitor.close();
  }
});

test('an idle loop reads no delay, and a window after the load ends it is forgotten', async () => {
  const monitor = createEventLoopMonitor({ windowMs: 100, resolutionMs: 20 });
  try {
    for (let i = 0; i < 4; i++) {
      block(150);
      await sleep(5);
    }
    assert.ok(monitor.delayMs() > 50, `loaded: ${monitor.delayMs()} ms`);
    await sleep(350);
    assert.ok(monitor.delayMs() < 10, `idle again: ${monitor.delayMs()} ms`);
  } finally {
    monitor.close();
  }
});
