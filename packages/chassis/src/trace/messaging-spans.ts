import { SpanKind, type Span, type Tracer } from '@opentelemetry/api';
import type { WorkContext } from './context.ts';
import { outgoingTraceparent } from './context.ts';
import { endSpan, remoteParent, startChild, traceparentOf, type TraceCarrier } from './spans.ts';

/**
 * Spans of the messaging path, so an event's hops stay in the trace of the request that caused it:
 *
 * - `outbox <type>` (producer): the event is written to the outbox; its context is the one the envelope carries;
 * - `publish <type>` (producer): the relay hands the event to the bus, child of the envelope's context;
 * - `consume <type>` (consumer): a subscription handles it, child of the envelope's context (inbox.ts).
 */

export interface EventTrace extends TraceCarrier {
  /** The outbox span, ended once the event is committed. */
  span?: Span;
}

/**
 * The trace context an event is written with: an outbox span's, child of `explicit` (a stored context the event
 * continues, e.g. work resumed by a timer) or else of the current work's span; with no span recorded, the
 * context as it is.
 */
export function eventTrace(work: WorkContext | undefined, tracer: Tracer | undefined, type: string, explicit: TraceCarrier | undefined): EventTrace {
  if (explicit) {
    if (tracer && explicit.traceparent) {
      const span = tracer.startSpan(`outbox ${type}`, { kind: SpanKind.PRODUCER, attributes: createAttributes(type) }, remoteParent(explicit.traceparent, explicit.tracestate));
      if (span.isRecording()) return { span, traceparent: traceparentOf(span), tracestate: explicit.tracestate };
    }
    return { traceparent: explicit.traceparent, tracestate: explicit.tracestate };
  }
  const span = work?.span === undefined ? undefined : startChild(work, `outbox ${type}`, SpanKind.PRODUCER, createAttributes(type));
  if (span) return { span, traceparent: traceparentOf(span), tracestate: work?.tracestate };
  return { traceparent: outgoingTraceparent(work), tracestate: work?.tracestate };
}

const createAttributes = (type: string) => ({ 'messaging.operation.type': 'create', 'messaging.destination.name': type });

/** A `publish <type>` span for an event the relay takes from the outbox, when its envelope's trace is sampled. */
export function startPublishSpan(tracer: Tracer, event: { id: string; type: string } & TraceCarrier, batchSize: number): Span | undefined {
  if (!event.traceparent) return undefined;
  const span = tracer.startSpan(
    `publish ${event.type}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.operation.type': 'send',
        'messaging.destination.name': event.type,
        'messaging.message.id': event.id,
        'messaging.batch.message_count': batchSize,
      },
    },
    remoteParent(event.traceparent, event.tracestate),
  );
  return span.isRecording() ? span : undefined;
}

/** `publish` spans for a batch the relay is about to publish (undefined when no tracer or none is sampled). */
export function startPublishSpans(tracer: Tracer | undefined, events: ({ id: string; type: string } & TraceCarrier)[]): Span[] | undefined {
  if (tracer === undefined) return undefined;
  const spans: Span[] = [];
  for (const event of events) {
    const span = startPublishSpan(tracer, event, events.length);
    if (span) spans.push(span);
  }
  return spans.length > 0 ? spans : undefined;
}

/** Ends the batch's `publish` spans when the publish settles; resolves as it does. */
export function trackPublish(spans: Span[] | undefined, publish: Promise<void>): Promise<void> {
  if (spans === undefined) return publish;
  return publish.then(
    () => {
      for (const span of spans) span.end();
    },
    (err: unknown) => {
      for (const span of spans) endSpan(span, err);
      throw err;
    },
  );
}
