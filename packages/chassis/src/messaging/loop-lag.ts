/**
 * How late this process's event loop runs timers, smoothed: a measure of how far behind it is. A ticker every
 * INTERVAL_MS notes how much later than due it ran; the gauge is an exponential moving average of that lag, so one
 * long task does not count as overload, a loop that stays behind does. One ticker per process (unref'd), started
 * by the first read.
 *
 * The ticker runs only while the figure means something: once nobody has read it for IDLE_STOP_MS and the lag has
 * decayed below SETTLED_MS, it stops, and the next read starts it again from zero (the lag it last saw). An idle
 * worker reads it once per poll, every few seconds; without the stop, the ticker alone woke every idle service
 * 100 times a second. While a process is behind, the ticker keeps running whether or not anyone reads it, so a
 * read after a long handler still sees the lag that handler caused.
 */
const INTERVAL_MS = 10;
const SMOOTHING = 0.2;
const IDLE_STOP_MS = 250;
/** Settled: well under the lag that counts as busy (10 ms by default), and above the ~1 ms late a timer runs anyway. */
const SETTLED_MS = 5;

let lagMs = 0;
let lastReadAt = 0;
let ticker: NodeJS.Timeout | undefined;

export function eventLoopLagMs(): number {
  lastReadAt = performance.now();
  if (!ticker) start();
  return lagMs;
}

/** Whether the ticker is running (tests). */
export function eventLoopLagTicking(): boolean {
  return ticker !== undefined;
}

function start(): void {
  lagMs = 0;
  let expected = performance.now() + INTERVAL_MS;
  ticker = setInterval(() => {
    const now = performance.now();
    lagMs += SMOOTHING * (Math.max(0, now - expected) - lagMs);
    expected = now + INTERVAL_MS;
    if (lagMs < SETTLED_MS && now - lastReadAt > IDLE_STOP_MS) {
      clearInterval(ticker);
      ticker = undefined;
    }
  }, INTERVAL_MS);
  ticker.unref(); // a gauge must not keep the process alive
}

export interface BackPressureOptions {
  /**
   * Back-pressure: while this process's event loop runs more than this late (smoothed, above), its consumers take
   * no new events, so the requests it serves keep their latency and the events wait on the bus. Default 10 ms;
   * 0 turns it off.
   */
  maxEventLoopLagMs?: number;
  /** Replaces the lag check: true while the process should take no new events (tests drive it). */
  busy?: () => boolean;
}

/** When a bus's consumers should hold off taking new events, per the options; undefined: never. */
export function busySignal(options: BackPressureOptions): (() => boolean) | undefined {
  if (options.busy) return options.busy;
  const maxLagMs = options.maxEventLoopLagMs ?? 10;
  return maxLagMs > 0 ? () => eventLoopLagMs() > maxLagMs : undefined;
}

/** How often a consumer held off by back-pressure looks again. */
export const BUSY_RECHECK_MS = 5;
