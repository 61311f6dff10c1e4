import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface EventLoopMonitorOptions {
  /** The delay reported is over the last completed window of this length. Default 1000 ms. */
  windowMs?: number;
  /** Sampling resolution of the histogram. Default 10 ms. */
  resolutionMs?: number;
  /** Percentile reported. Default 99. */
  percentile?: number;
}

export interface EventLoopMonitor {
  /** The chosen percentile of event-loop delay over the last completed window, in ms (0 until the second window). */
  delayMs(): number;
  close(): void;
}

/**
 * Event-loop delay from perf_hooks' histogram (sampled by libuv, nearly free), read and reset once per window:
 * a recent percentile reacts to overload within a window and forgets it a window after it ends, where the
 * histogram's lifetime figures would never recover from one bad minute.
 */
export function createEventLoopMonitor(options: EventLoopMonitorOptions = {}): EventLoopMonitor {
  const percentile = options.percentile ?? 99;
  const histogram = monitorEventLoopDelay({ resolution: options.resolutionMs ?? 10 });
  histogram.enable();
  let last = 0;
  // The first window covers start-up (module loading, route compilation): a one-off lag that says nothing about load.
  let warmedUp = false;
  const timer = setInterval(() => {
    // With no samples in the window (loop blocked the whole time) the histogram reads 0; its max is then the truth.
    if (warmedUp) last = (histogram.count > 0 ? histogram.percentile(percentile) : histogram.max) / 1e6;
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
