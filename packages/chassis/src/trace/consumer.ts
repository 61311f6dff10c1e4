import type { Attributes, Tracer } from '@opentelemetry/api';
import type { EventEnvelope } from '../messaging/envelope.ts';
import { contextFrom, runWithContext } from './context.ts';
import { failSpan, SpanKind, startWork, type TraceCarrier } from './spans.ts';
import { workStorage } from './work.ts';

/**
 * Runs an event's handling in a work context of its own: with tracing on, under a `consume <type>` span whose parent
 * is the context the envelope carries, so the hop stays in the trace of whatever caused the event; without, with
 * the envelope's ids carried on. The event id is the work's request id. A handling that the inbox found to be a
 * duplicate (`'duplicate'`) is marked as such; a failure is recorded on the span and rethrown.
 */
export function runConsumer<T>(tracer: Tracer | undefined, consumer: string, event: EventEnvelope, attempt: number, fn: () => Promise<T>): Promise<T> {
  if (tracer === undefined) return runWithContext(contextFrom({ traceparent: event.traceparent, tracestate: event.tracestate, requestId: event.id }), fn);
  const work = startWork(tracer, `consume ${event.type}`, SpanKind.CONSUMER, event.traceparent, event.tracestate, event.id, undefined, {
    'messaging.operation.type': 'process',
    'messaging.destination.name': event.type,
    'messaging.consumer.group.name': consumer,
    'messaging.message.id': event.id,
    'messaging.message.conversation_id': event.correlationId,
    'simplebank.delivery.attempt': attempt,
  });
  const span = work.span;
  const handled = workStorage.run(work, fn);
  if (span === undefined) return handled;
  return handled.then(
    (outcome) => {
      if ((outcome as unknown) === 'duplicate') span.setAttribute('simplebank.duplicate', true);
      span.end();
      return outcome;
    },
    (err: unknown) => {
      failSpan(span, err);
      span.end();
      throw err;
    },
  );
}

/** Work a service queued for itself, being done: run each part of it in its context; end it once, when done. */
export interface QueuedWork {
  inContext: <T>(fn: () => T) => T;
  /** Ends its span (if recorded), as failed when given the error. */
  end(err?: unknown): void;
}

/**
 * A work context for work a service queued for itself in its own table (neither a request nor an event), continuing
 * the trace stored with it: with tracing on, under a span `name` whose parent is that context, so the step stays in
 * the trace of whatever queued it; without, with the stored ids carried on.
 */
export function startQueuedWork(tracer: Tracer | undefined, name: string, trace: TraceCarrier | undefined, attributes: Attributes): QueuedWork {
  const work =
    tracer === undefined
      ? contextFrom({ traceparent: trace?.traceparent, tracestate: trace?.tracestate })
      : startWork(tracer, name, SpanKind.CONSUMER, trace?.traceparent, trace?.tracestate, undefined, undefined, attributes);
  let ended = false;
  return {
    inContext: (fn) => workStorage.run(work, fn),
    end(err) {
      const span = work.span;
      if (ended || span === undefined) return;
      ended = true;
      if (err !== undefined) failSpan(span, err);
      span.end();
    },
  };
}
