import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { otlpTracesUrl, type TracingConfig } from './config.ts';
import { registerWorkContextManager } from './context-manager.ts';
import { SpanRing } from './ring.ts';
import { createSampler } from './sampler.ts';
import { ChassisTracer } from './tracer.ts';

/** A service's tracing: its tracer, the ring of its recent spans, and the OTLP export if configured. */
export interface Tracing {
  readonly tracer: ChassisTracer;
  /** Recent spans for the admin endpoint (absent when TRACE_RING_SPANS=0). */
  readonly ring: SpanRing | undefined;
  /** Where spans are exported (OTLP over HTTP), if anywhere. */
  readonly exportUrl: string | undefined;
  /** Exports what is still buffered, then stops. */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  service: string;
  version?: string;
  instance?: string;
  config: TracingConfig;
  /** Span processors besides the ring and the OTLP export (tests: an in-memory exporter). */
  processors?: SpanProcessor[];
}

let anyTracing = false;

/**
 * Whether any service of this process traces. Hooks on paths that have no work context at hand (queries, outbox
 * writes) check this before looking the context up, so with OTEL_SDK_DISABLED=true they cost one branch.
 */
export const tracingOn = (): boolean => anyTracing;

/**
 * The OpenTelemetry SDK set up for one service from its validated config, or undefined when OTEL_SDK_DISABLED:
 * then no span is made anywhere and trace context only travels (ids in headers, envelopes and logs).
 * Each service has its own provider (several services may share a process in tests); none is registered globally,
 * the chassis passes its tracer along in the work context. The work context does serve as OpenTelemetry's
 * global context manager, so `trace.getActiveSpan()` works in handlers.
 */
export function createTracing(options: TracingOptions): Tracing | undefined {
  const { config } = options;
  if (config.OTEL_SDK_DISABLED) return undefined;
  const processors: SpanProcessor[] = [...(options.processors ?? [])];
  const ring = config.TRACE_RING_SPANS > 0 ? new SpanRing(config.TRACE_RING_SPANS) : undefined;
  if (ring) processors.push(ring);
  const exportUrl = otlpTracesUrl(config);
  // Batched: spans are queued in memory and sent every few seconds (or 512 at a time) off the request path.
  if (exportUrl) processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: exportUrl })));
  // The chassis' own tracer (tracer.ts: the SDK's Tracer and Span cost more per request than the rest of the
  // chassis); the resource, scope, sampler, processors and exporter are the SDK's. Ids come from the chassis'
  // pooled CSPRNG text (ids.ts).
  const tracer = new ChassisTracer({
    resource: defaultResource().merge(
      resourceFromAttributes({
        'service.name': options.service,
        ...(options.version ? { 'service.version': options.version } : {}),
        'service.instance.id': options.instance ?? String(process.pid),
      }),
    ),
    scope: { name: '@simplebank/chassis', version: undefined, schemaUrl: undefined },
    sampler: createSampler(config.OTEL_TRACES_SAMPLER, config.OTEL_TRACES_SAMPLER_ARG ?? 1),
    processors,
  });
  registerWorkContextManager();
  anyTracing = true;
  return {
    tracer,
    ring,
    exportUrl,
    shutdown: () => tracer.shutdown(),
  };
}
