import type { LoadShedder, ShedReason } from '../protection/load-shedding.ts';
import type { ServiceMetrics } from './registry.ts';
import { followTotal } from './series.ts';

/** The catalog's reason names for the shedder's (docs/observability.md). */
const REASON: Record<ShedReason, string> = { event_loop_delay: 'event_loop', in_flight: 'in_flight', route_concurrency: 'route_concurrency' };

/**
 * `http_server_shed_total{reason}`: requests the load shedder answered 503, read from its counters at scrape time
 * (nothing on the request path). All three reasons exist from the start at 0. No shedder (LOAD_SHED_ENABLED=false):
 * nothing is declared.
 */
export function loadSheddingMetrics(metrics: ServiceMetrics, shedder: LoadShedder | undefined): void {
  if (!shedder) return;
  const feeds: ((shed: Record<ShedReason, number>) => void)[] = [];
  const counter = metrics.counter<'reason'>({
    name: 'http_server_shed_total',
    help: 'HTTP requests answered 503 by load shedding, by reason (event_loop, in_flight, route_concurrency)',
    labelNames: ['reason'],
    collect() {
      const { shed } = shedder.stats();
      for (const feed of feeds) feed(shed);
    },
  });
  for (const [reason, label] of Object.entries(REASON) as [ShedReason, string][]) {
    const follow = followTotal(counter.series({ reason: label }));
    feeds.push((shed) => follow(shed[reason]));
  }
}
