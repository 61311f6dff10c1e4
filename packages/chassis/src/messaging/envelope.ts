import { randomUUID } from 'node:crypto';

/**
 * The envelope every event travels in, on every bus. Modelled on CloudEvents' required attributes,
 * plus the correlation/causation ids a saga needs and the W3C trace context so a trace survives the hop.
 */
export interface EventEnvelope<T = unknown> {
  /** Unique event id (uuid). Consumers deduplicate on it. */
  id: string;
  /** Versioned type, `<service>.<EventName>.v<major>`, e.g. `orders.OrderAccepted.v1`. */
  type: string;
  /** Producing service name. */
  source: string;
  /** ISO-8601 UTC time the event was recorded (in the producer's transaction). */
  time: string;
  /** The aggregate the event is about (e.g. the order id). Ordering, where promised, is per subject. */
  subject: string;
  /** Id shared by every event and request of one business operation (e.g. the order id). */
  correlationId: string;
  /** Id of the event or request that caused this event. */
  causationId?: string;
  /** W3C trace context of the span that produced the event. */
  traceparent?: string;
  tracestate?: string;
  data: T;
}

export interface NewEvent<T = unknown> {
  type: string;
  subject: string;
  data: T;
  correlationId?: string;
  causationId?: string;
  /**
   * The trace this event continues, when not the current request's or delivery's: a context stored earlier
   * (e.g. with the order) by work that a timer resumes. Usually an envelope's or `outgoingTraceparent()`'s.
   */
  trace?: { traceparent?: string | undefined; tracestate?: string | undefined };
}

export function createEnvelope<T>(source: string, event: NewEvent<T>, trace?: { traceparent?: string; tracestate?: string }): EventEnvelope<T> {
  const id = randomUUID();
  return {
    id,
    type: event.type,
    source,
    time: new Date().toISOString(),
    subject: event.subject,
    correlationId: event.correlationId ?? event.subject,
    ...(event.causationId ? { causationId: event.causationId } : {}),
    ...(trace?.traceparent ? { traceparent: trace.traceparent } : {}),
    ...(trace?.tracestate ? { tracestate: trace.tracestate } : {}),
    data: event.data,
  };
}
