import type { BreakerStatus } from '../resilience/circuit-breaker.ts';
import type { ResiliencePipeline } from '../resilience/pipeline.ts';
import type { ServiceMetrics } from './registry.ts';
import { followTotal } from './series.ts';

/** `resilience_breaker_state`: 0 closed, 1 half-open, 2 open (a manually tripped, `isolated`, circuit is open). */
const STATE_VALUE: Record<BreakerStatus, number> = { closed: 0, 'half-open': 1, open: 2, isolated: 2 };
const TRANSITION_TO: Record<BreakerStatus, 'closed' | 'half_open' | 'open'> = { closed: 'closed', 'half-open': 'half_open', open: 'open', isolated: 'open' };

/**
 * The state of each dependency's resilience pipeline, read from what the pipeline already keeps: gauges and
 * counters are read from `stats()` and the policies at scrape time (nothing on the call path), breaker transitions
 * come from its `onStateChange` events. Every series exists from the start (0), so a dashboard shows a dependency
 * before anything has gone wrong with it. Returns the unsubscriber.
 */
export function resilienceMetrics(metrics: ServiceMetrics, pipelines: ReadonlyMap<string, ResiliencePipeline>): () => void {
  if (pipelines.size === 0) return () => {};
  const all = [...pipelines.values()];

  metrics.gauge<'dependency'>({
    name: 'resilience_breaker_state',
    help: 'circuit breaker state per dependency: 0 closed, 1 half-open, 2 open',
    labelNames: ['dependency'],
    collect() {
      for (const p of all) this.set({ dependency: p.dependency }, STATE_VALUE[p.breaker.state.status]);
    },
  });
  metrics.gauge<'dependency'>({
    name: 'resilience_bulkhead_in_use',
    help: 'calls holding a bulkhead slot, per dependency',
    labelNames: ['dependency'],
    collect() {
      for (const p of all) this.set({ dependency: p.dependency }, p.bulkhead.stats().inUse);
    },
  });
  metrics.gauge<'dependency'>({
    name: 'resilience_bulkhead_queued',
    help: 'calls waiting for a bulkhead slot, per dependency',
    labelNames: ['dependency'],
    collect() {
      for (const p of all) this.set({ dependency: p.dependency }, p.bulkhead.stats().queued);
    },
  });

  const feeds: (() => void)[] = [];
  const retries = metrics.counter<'dependency'>({
    name: 'resilience_retries_total',
    help: 'retries made per dependency',
    labelNames: ['dependency'],
    collect: () => feeds.forEach((f) => f()),
  });
  const budget = metrics.counter<'dependency'>({
    name: 'resilience_retry_budget_exhausted_total',
    help: 'retries refused by the retry budget per dependency',
    labelNames: ['dependency'],
    collect: () => feeds.forEach((f) => f()),
  });
  const transitions = metrics.counter<'dependency' | 'to'>({
    name: 'resilience_breaker_transitions_total',
    help: 'circuit breaker state changes per dependency, by the state entered',
    labelNames: ['dependency', 'to'],
  });

  const unsubscribers: (() => void)[] = [];
  for (const p of all) {
    const dependency = p.dependency;
    const retried = followTotal(retries.series({ dependency }));
    const refused = followTotal(budget.series({ dependency }));
    feeds.push(() => {
      const s = p.retry.stats();
      retried(s.retries);
      refused(s.budgetExhausted);
    });
    const to = {
      closed: transitions.series({ dependency, to: 'closed' }),
      half_open: transitions.series({ dependency, to: 'half_open' }),
      open: transitions.series({ dependency, to: 'open' }),
    };
    unsubscribers.push(p.breaker.onStateChange((change) => to[TRANSITION_TO[change.to.status]].inc()));
  }
  return () => unsubscribers.forEach((u) => u());
}
