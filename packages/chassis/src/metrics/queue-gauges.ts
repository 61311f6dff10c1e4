import type { ServiceMetrics } from './registry.ts';
import { throttledWarn, type WarnLog } from '../protection/warn-throttle.ts';
import { sampler } from './sampler.ts';

/** What a table of queued work holds at scrape time: rows waiting, and how long the oldest due one has (s, 0 when none). */
export interface QueueSample {
  size: number;
  lag: number;
}

export interface QueueGaugesOptions {
  /** One query for both figures. */
  read: () => Promise<QueueSample | undefined>;
  size: { name: string; help: string };
  lag: { name: string; help: string };
  /** Names the queue in the warning about a failed or timed-out read (at most once a minute). */
  what: string;
  log?: WarnLog;
}

/**
 * A backlog gauge and a lag gauge for a table that queues work (the outbox; a service's own queue of steps), read
 * at scrape time by one sampled query (sampler: once per scrape, with a timeout; on failure the gauges keep their
 * last values).
 */
export function queueGauges(metrics: ServiceMetrics, options: QueueGaugesOptions): void {
  const warn = throttledWarn(options.log, 60_000);
  const read = sampler(options.read, { onError: (err) => warn({ err }, `could not read ${options.what} for metrics`) });
  metrics.gauge({
    ...options.size,
    async collect() {
      const row = await read();
      if (row) this.set(row.size);
    },
  });
  metrics.gauge({
    ...options.lag,
    async collect() {
      const row = await read();
      if (row) this.set(row.lag);
    },
  });
}
