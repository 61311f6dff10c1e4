import type { Tracer } from '@opentelemetry/api';
import type { onRequestHookHandler } from 'fastify';
import { SpanKind, traceWork } from './spans.ts';

/**
 * The route-level onRequest hook of a contract route when tracing is on: the request's work context (made by the
 * server's own onRequest hook, and what other hooks added to it, e.g. the gateway's customer) gets a server span
 * named for the route template (`GET /orders/:id`), child of the caller's `traceparent`. It runs after the global
 * hooks and the protection hooks, so a request shed or refused before it gets no span. The span ends when the response is sent (server.ts, with the access log).
 */
export function serverSpanHook(tracer: Tracer, method: string, path: string): onRequestHookHandler {
  const name = `${method} ${path}`;
  const attributes = Object.freeze({ 'http.request.method': method, 'http.route': path });
  return (request, _reply, done) => {
    traceWork(request.work, tracer, name, SpanKind.SERVER, attributes, true);
    done();
  };
}
