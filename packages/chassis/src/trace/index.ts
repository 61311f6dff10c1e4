// The tracing surface of the chassis (index.ts re-exports it).
export { tracingConfigShape, otlpTracesUrl, SAMPLERS, type SamplerName, type TracingConfig } from './config.ts';
export { createTracing, type Tracing, type TracingOptions } from './tracing.ts';
export { createSampler } from './sampler.ts';
export { SpanRing } from './ring.ts';
export { spanToJson, type SpanJson } from './span-json.ts';
export { traceAdminRoutes, TRACES_ADMIN_PATH, type TraceAdminOptions } from './admin.ts';
export { WorkContextManager } from './context-manager.ts';
export type { TraceCarrier } from './spans.ts';
export type { QueuedWork } from './consumer.ts';
