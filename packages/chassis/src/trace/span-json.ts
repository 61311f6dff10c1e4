import { SpanKind, SpanStatusCode, type Attributes, type HrTime } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';

/** One span as the admin endpoint serves it (and `simplebank trace` reads it). Times in µs since the epoch. */
export interface SpanJson {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: 'internal' | 'server' | 'client' | 'producer' | 'consumer';
  service: string;
  instance?: string;
  startUnixUs: number;
  durationUs: number;
  status: 'unset' | 'ok' | 'error';
  statusMessage?: string;
  attributes: Attributes;
  events: { name: string; timeUnixUs: number; attributes?: Attributes }[];
  links: { traceId: string; spanId: string }[];
}

const KINDS: Record<SpanKind, SpanJson['kind']> = {
  [SpanKind.INTERNAL]: 'internal',
  [SpanKind.SERVER]: 'server',
  [SpanKind.CLIENT]: 'client',
  [SpanKind.PRODUCER]: 'producer',
  [SpanKind.CONSUMER]: 'consumer',
};

const micros = (t: HrTime): number => t[0] * 1e6 + Math.round(t[1] / 1e3);

export function spanToJson(span: ReadableSpan): SpanJson {
  const sc = span.spanContext();
  const resource = span.resource.attributes;
  const parent = span.parentSpanContext?.spanId;
  const instance = resource['service.instance.id'];
  return {
    traceId: sc.traceId,
    spanId: sc.spanId,
    ...(parent ? { parentSpanId: parent } : {}),
    name: span.name,
    kind: KINDS[span.kind],
    service: String(resource['service.name'] ?? 'unknown'),
    ...(instance !== undefined ? { instance: String(instance) } : {}),
    startUnixUs: micros(span.startTime),
    durationUs: micros(span.duration),
    status: span.status.code === SpanStatusCode.ERROR ? 'error' : span.status.code === SpanStatusCode.OK ? 'ok' : 'unset',
    ...(span.status.message ? { statusMessage: span.status.message } : {}),
    attributes: span.attributes,
    events: span.events.map((e) => ({ name: e.name, timeUnixUs: micros(e.time), ...(e.attributes ? { attributes: e.attributes } : {}) })),
    links: span.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId })),
  };
}
