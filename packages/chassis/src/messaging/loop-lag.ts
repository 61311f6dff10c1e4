/**
 * How late this process's event loop runs timers, smoothed: a measure of how far behind it is. A ticker every
 * INTERVAL_MS notes how much later than due it ran; the gauge is an exponential moving average of that lag, so one
 * long task does not count as overload, a loop that stays behind does. One ticker per process (unref'd), started
 * by the first caller.
 */
const INTERVAL_MS = 10;
const SMOOTHING = 0.2;

let lagMs = 0;
let started = false;

export function eventLoopLagMs(): number {
  if (!started) {
    started = true;
    let expected = performance.now() + INTERVAL_MS;
    setInterval(() => {
      const now = performance.now();
      lagMs += SMOOTHING * (Math.max(0, now - expected) - lagMs);
      expected = now + INTERVAL_MS;
    }, INTERVAL_MS).unref();
  }
  return lagMs;
}
