import { z } from 'zod';
import { envFlag } from '../config/config.ts';

/** The sampler names of the OpenTelemetry environment specification (OTEL_TRACES_SAMPLER). */
export const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
export type SamplerName = (typeof SAMPLERS)[number];

/**
 * The env keys of tracing, validated with a service's other config (spread into its config shape). They follow the
 * OpenTelemetry SDK conventions where one exists; a bad value stops the service at start-up naming the variable,
 * rather than silently falling back as the SDK would.
 */
export const tracingConfigShape = {
  OTEL_SDK_DISABLED: envFlag(false, 'true: no spans at all (trace ids still travel on calls and events, and appear in logs)'),
  OTEL_TRACES_SAMPLER: z.enum(SAMPLERS).default('parentbased_always_on').describe('which traces are recorded: an OpenTelemetry sampler name'),
  OTEL_TRACES_SAMPLER_ARG: z.coerce
    .number()
    .min(0)
    .max(1)
    .optional()
    .describe('for traceidratio samplers: the share of new traces recorded, 0..1 (default 1)'),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional().describe('OTLP/HTTP collector base URL (spans go to <url>/v1/traces); unset: no export'),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.string().url().optional().describe('OTLP/HTTP traces URL, used as is (wins over OTEL_EXPORTER_OTLP_ENDPOINT)'),
  TRACE_RING_SPANS: z.coerce
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    // 1 000, not more: spans kept long enough to survive two young-generation collections are promoted to V8's old
    // space, and copying, marking and sweeping them became the largest cost of tracing (bench/rpc: with 10 000 the
    // traced stack kept ~80 % of the untraced one's throughput, with 1 000 ~89 %; docs/benchmarks.md). Longer
    // history belongs in a tracing backend (OTLP).
    .default(1_000)
    .describe('recent spans kept in memory for GET /admin/traces (0 = none)'),
};

export type TracingConfig = z.infer<z.ZodObject<typeof tracingConfigShape>>;

/** The OTLP traces URL the config asks for, if any (the signal-specific variable wins, as in the SDK). */
export function otlpTracesUrl(config: Pick<TracingConfig, 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'>): string | undefined {
  if (config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const base = config.OTEL_EXPORTER_OTLP_ENDPOINT;
  return base ? `${base.replace(/\/+$/, '')}/v1/traces` : undefined;
}
