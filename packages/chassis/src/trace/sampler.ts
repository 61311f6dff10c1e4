import { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, TraceIdRatioBasedSampler, type Sampler } from '@opentelemetry/sdk-trace-base';
import type { SamplerName } from './config.ts';

/**
 * The sampler an OTEL_TRACES_SAMPLER name stands for. Parent-based samplers follow the caller's decision (the
 * `sampled` flag of the incoming `traceparent`, or of the event's envelope), so a trace is recorded whole or not
 * at all; `ratio` (OTEL_TRACES_SAMPLER_ARG, default 1) applies to traces that start here.
 */
export function createSampler(name: SamplerName, ratio = 1): Sampler {
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}
