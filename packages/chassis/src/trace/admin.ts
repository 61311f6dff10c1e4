import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import { sendProblem, tokenMatches } from '../protection/http-util.ts';
import { HEADERS } from '../http/headers.ts';
import { spanToJson } from './span-json.ts';
import type { Tracing } from './tracing.ts';

export const TRACES_ADMIN_PATH = '/admin/traces';

const TRACE_ID = /^[0-9a-f]{32}$/;

export interface TraceAdminOptions {
  service: string;
  /** Undefined when tracing is off (OTEL_SDK_DISABLED). */
  tracing: Tracing | undefined;
  serviceToken: string;
}

/**
 * This service's recent spans, service credential required (`x-service-token`), for `simplebank trace` and the
 * operations console; a trace is assembled by asking every service:
 *
 * - `GET /admin/traces/:traceId`: the spans of one trace still in this service's ring, oldest first;
 * - `GET /admin/traces?limit=20`: the most recent traces (id, span count, earliest span), newest first.
 *
 * 404 `traces_unavailable` when this service keeps no spans (OTEL_SDK_DISABLED=true or TRACE_RING_SPANS=0).
 */
export function traceAdminRoutes(app: FastifyInstance, options: TraceAdminOptions): void {
  const { service, serviceToken } = options;
  const ring = options.tracing?.ring;
  const guard: onRequestHookHandler = (request, reply, done) => {
    if (tokenMatches(request.headers[HEADERS.serviceToken], serviceToken)) return done();
    sendProblem(reply, request, 401, 'unauthorized', 'service credential required (x-service-token)');
  };
  const unavailable = `${service} keeps no spans (tracing is off: OTEL_SDK_DISABLED=true, or TRACE_RING_SPANS=0)`;

  app.get(TRACES_ADMIN_PATH, { onRequest: guard }, async (request, reply) => {
    if (!ring) return sendProblem(reply, request, 404, 'traces_unavailable', unavailable);
    const raw = Number((request.query as { limit?: string }).limit ?? 20);
    const limit = Number.isInteger(raw) && raw > 0 ? Math.min(raw, 1000) : 20;
    return {
      service,
      capacity: ring.capacity,
      spansEnded: ring.total,
      traces: ring.recentTraces(limit).map(({ traceId, spans, first }) => {
        const json = spanToJson(first);
        return { traceId, spans, firstSpan: json.name, startUnixUs: json.startUnixUs };
      }),
    };
  });

  app.get(`${TRACES_ADMIN_PATH}/:traceId`, { onRequest: guard }, async (request, reply) => {
    const traceId = (request.params as { traceId: string }).traceId.toLowerCase();
    if (!TRACE_ID.test(traceId)) return sendProblem(reply, request, 400, 'bad_request', 'traceId must be 32 hex digits');
    if (!ring) return sendProblem(reply, request, 404, 'traces_unavailable', unavailable);
    return { service, traceId, spans: ring.trace(traceId).map(spanToJson) };
  });
}
