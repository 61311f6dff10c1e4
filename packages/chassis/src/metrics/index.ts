// Prometheus metrics (docs/observability.md, "Metric catalog"): one registry per service instance, and a module per
// source — HTTP server, dependency calls, resilience state, load shedding, messaging. Services declare their
// business metrics on `ctx.metrics`.
export { createServiceMetrics, LATENCY_BUCKETS, type CounterOptions, type GaugeOptions, type MetricHistogramOptions, type ServiceMetrics, type ServiceMetricsOptions } from './registry.ts';
export { CounterFamily, HistogramFamily, followTotal, DEFAULT_MAX_SERIES, type CounterSeries, type HistogramSeries, type LabelValues } from './series.ts';
export { httpServerMetrics, isMetricsExcluded, type HttpServerMetricsOptions } from './http-server.ts';
export { metricsRoute, METRICS_PATH } from './endpoint.ts';
export { clientMetrics, callOutcome, type CallOutcome, type ClientMetrics } from './client.ts';
export { resilienceMetrics } from './resilience.ts';
export { loadSheddingMetrics } from './protection.ts';
export { messagingMetrics, type MessagingMetrics, type MessagingMetricsOptions } from './messaging.ts';
export { parseExposition, sampleValue, seriesNames, type Exposition, type Sample } from './exposition.ts';
export { sampler, type SamplerOptions } from './sampler.ts';
export { queueGauges, type QueueGaugesOptions, type QueueSample } from './queue-gauges.ts';
