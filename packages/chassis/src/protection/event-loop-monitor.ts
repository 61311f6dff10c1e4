import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface EventLoopMonitorOptions {
  /** The delay reported is over the last completed window of this length. Default 1000 ms. */
  windowMs?: number;
  /** Sampling resolution of the histogram. Default EVENT_LOOP_SAMPLE_MS. */
  resolutionMs?: number;
}

/**
 * How often the event-loop delay histograms sample (this monitor's, and prom-client's behind
 * `nodejs_eventloop_lag_seconds`). Each sample is a timer that wakes the process, idle or not: at prom-client's and
 * @fastify/under-pressure's 10 ms the two histograms woke every idle service 200 times a second. 20 ms still gives
 * 50 samples a window, plenty for a mean compared with a threshold of hundreds of ms.
 */
export const EVENT_LOOP_SAMPLE_MS = 20;

export interface EventLoopMonitor {
  /** Mean event-loop delay over the last completed window, in ms (0 until the second window). */
  delayMs(): number;
  close(): void;
}

/**
 * Event-loop delay from perf_hooks' histogram (sampled by libuv, nearly free), taken per window: a recent figure
 * reacts to overload within a window and forgets it a window after it ends, where the histogram's lifetime figures
 * would never recover from one bad minute.
 *
 * The window's figures are differences of the histogram's running count and sum, not a reset per window: after
 * `reset()` the histogram drops the next sample (it only notes when it was taken), so a loop blocked by long tasks
 * with gaps shorter than the resolution between them (one sample per task, each dropped) read 0 window after window.
 *
 * The MEAN delay (as @fastify/under-pressure uses), not a high percentile: at one sample per 20 ms a window has
 * ~50 samples, so its p99 is its maximum, and one stall (a major GC, the process not scheduled for a
 * moment on a busy machine) would shed every request for a second. A mean of hundreds of ms means the loop is
 * behind all the time.
 */
export function createEventLoopMonitor(options: EventLoopMonitorOptions = {}): EventLoopMonitor {
  const resolutionMs = options.resolutionMs ?? EVENT_LOOP_SAMPLE_MS;
  const windowMs = options.windowMs ?? 1_000;
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  histogram.enable();
  let last = 0;
  let count = 0;
  let sumNs = 0;
  let due = performance.now() + windowMs;
  // The first window covers start-up (module loading, route compilation): a one-off lag that says nothing about load.
  let warmedUp = false;
  const timer = setInterval(() => {
    const now = performance.now();
    const total = histogram.count;
    const totalNs = total > 0 ? histogram.mean * total : 0;
    const samples = total - count;
    // A sample is the time between two timer runs, so the resolution itself is not delay. With no sample in the
    // window the loop was blocked throughout: this timer ran late by about as long.
    const delay = samples > 0 ? (totalNs - sumNs) / samples / 1e6 - resolutionMs : now - due;
    if (warmedUp) last = Math.max(0, delay);
    warmedUp = true;
    count = total;
    sumNs = totalNs;
    due = now + windowMs;
  }, windowMs);
  timer.unref(); // a monitor must not keep the process alive
  return {
    delayMs: () => last,
    close() {
      clearInterval(timer);
      histogram.disable();
    },
  };
}
