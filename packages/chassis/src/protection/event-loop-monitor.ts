import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface EventLoopMonitorOptions {
  /** The delay reported is over the last completed window of this length. Default 1000 ms. */
  windowMs?: number;
  /** Sampling resolution of the histogram. Default 10 ms. */
  resolutionMs?: number;
}

export interface EventLoopMonitor {
  /** Mean event-loop delay over the last completed window, in ms (0 until the second window). */
  delayMs(): number;
  close(): void;
}

/**
 * Event-loop delay from perf_hooks' histogram (sampled by libuv, nearly free), read and reset once per window:
 * a recent figure reacts to overload within a window and forgets it a window after it ends, where the histogram's
 * lifetime figures would never recover from one bad minute.
 *
 * The MEAN delay (as @fastify/under-pressure uses), not a high percentile: at one sample per 10 ms a window has
 * ~100 samples, so its p99 is about its maximum, and one stall (a major GC, the process not scheduled for a
 * moment on a busy machine) would shed every request for a second. A mean of hundreds of ms means the loop is
 * behind all the time.
 */
export function createEventLoopMonitor(options: EventLoopMonitorOptions = {}): EventLoopMonitor {
  const resolutionMs = options.resolutionMs ?? 10;
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  histogram.enable();
  let last = 0;
  // The first window covers start-up (module loading, route compilation): a one-off lag that says nothing about load.
  let warmedUp = false;
  const timer = setInterval(() => {
    // A sample is the time between two timer runs, so the resolution itself is not delay. With no samples in the
    // window (the loop blocked the whole time) the histogram reads 0; its max is then the truth.
    if (warmedUp) last = Math.max(0, (histogram.count > 0 ? histogram.mean : histogram.max) / 1e6 - resolutionMs);
    warmedUp = true;
    histogram.reset();
  }, options.windowMs ?? 1_000);
  timer.unref(); // a monitor must not keep the process alive
  return {
    delayMs: () => last,
    close() {
      clearInterval(timer);
      histogram.disable();
    },
  };
}
