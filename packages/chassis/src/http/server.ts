import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { Contract, Handlers, RequestInfo, RouteDef } from '../contract/define.ts';
import { buildOpenApi } from '../contract/openapi.ts';
import { isProblemError, PROBLEM_CONTENT_TYPE, ProblemError, problems } from '../errors/problem.ts';
import { contextFrom, runWithContext, type WorkContext } from '../trace/context.ts';
import { HEADERS } from './headers.ts';
import { parsePart } from './validation.ts';

export interface HttpServerOptions {
  contract: Contract;
  handlers: Handlers<Contract>;
  log: Logger;
  serviceToken: string;
  /** Readiness checks; each throws when its dependency is unreachable. */
  readiness: Record<string, () => Promise<void>>;
  /** Largest accepted request body in bytes. */
  bodyLimit?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    work: WorkContext;
  }
}

function tokenMatches(given: string | undefined, expected: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function sendProblem(reply: FastifyReply, request: FastifyRequest, err: ProblemError): FastifyReply {
  for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
  return reply.status(err.status).type(PROBLEM_CONTENT_TYPE).send(err.toProblem(request.url.split('?')[0]));
}

/** Maps whatever a handler or fastify threw to a problem; unknown errors become an opaque 500. */
function toProblemError(err: unknown): ProblemError {
  if (isProblemError(err)) return err;
  const fastifyErr = err as { statusCode?: number; code?: string; message?: string };
  if (typeof fastifyErr.statusCode === 'number' && fastifyErr.statusCode >= 400 && fastifyErr.statusCode < 500) {
    const code = fastifyErr.statusCode === 413 ? 'payload_too_large' : fastifyErr.statusCode === 415 ? 'unsupported_media_type' : 'bad_request';
    return new ProblemError(fastifyErr.statusCode, code, fastifyErr.message);
  }
  return new ProblemError(500, 'internal', 'internal error');
}

/**
 * Builds the fastify app for a service from its contract: each route validates its input with the
 * contract's zod schemas and runs its handler inside the request's work context (ids, trace, deadline).
 */
export function createHttpServer(options: HttpServerOptions): { app: FastifyInstance; setReady(ready: boolean): void } {
  const { contract, handlers, log } = options;
  let ready = false;
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimit ?? 256 * 1024,
    // Close idle keep-alive sockets at shutdown so `close()` waits only for requests in flight.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    requestIdHeader: HEADERS.requestId,
    // Ids must be unique across processes and restarts, not fastify's per-process counter.
    genReqId: () => randomUUID(),
  });
  app.decorateRequest('work', null as unknown as WorkContext);

  app.addHook('onRequest', async (request, reply) => {
    const remaining = Number(request.headers[HEADERS.deadline]);
    request.work = contextFrom({
      traceparent: request.headers[HEADERS.traceparent] as string | undefined,
      tracestate: request.headers[HEADERS.tracestate] as string | undefined,
      requestId: (request.headers[HEADERS.requestId] as string | undefined) ?? request.id,
      ...(Number.isFinite(remaining) && remaining >= 0 ? { deadline: Date.now() + remaining } : {}),
    });
    reply.header(HEADERS.requestId, request.work.requestId);
  });

  app.addHook('onResponse', async (request, reply) => {
    // 503 and 504 are this service protecting itself or its callers (not ready, deadline passed), not faults.
    const level = reply.statusCode >= 500 && reply.statusCode !== 503 && reply.statusCode !== 504 ? 'error' : 'debug';
    runWithContext(request.work, () =>
      log[level]({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request'),
    );
  });

  app.setErrorHandler((err, request, reply) => {
    const problem = toProblemError(err);
    if (problem.status >= 500) runWithContext(request.work, () => log.error({ err }, 'request failed'));
    return sendProblem(reply, request, problem);
  });
  app.setNotFoundHandler((request, reply) => sendProblem(reply, request, new ProblemError(404, 'route_not_found', `no route ${request.method} ${request.url.split('?')[0]}`)));

  for (const [name, def] of Object.entries(contract.routes) as [string, RouteDef][]) {
    const handler = handlers[name];
    if (!handler) throw new Error(`${contract.service}: no handler for route ${name}`);
    app.route({
      method: def.method,
      url: def.path,
      handler: async (request, reply) => {
        if (def.auth === 'service') {
          const bearer = request.headers.authorization?.replace(/^Bearer\s+/i, '');
          const given = (request.headers[HEADERS.serviceToken] as string | undefined) ?? bearer;
          if (!tokenMatches(given, options.serviceToken)) throw problems.unauthorized('service credential required');
        }
        const work = request.work;
        if (work.deadline !== undefined && work.deadline <= Date.now()) {
          throw new ProblemError(504, 'deadline_exceeded', 'the caller\'s deadline has already passed');
        }
        const input = {
          params: parsePart(def.params, request.params, 'params'),
          query: parsePart(def.query, request.query, 'query'),
          body: parsePart(def.body, request.body, 'body'),
          headers: parsePart(def.headers, request.headers, 'headers'),
        };
        const info: RequestInfo = {
          requestId: work.requestId,
          ...(work.deadline !== undefined ? { deadline: work.deadline } : {}),
          header: (h) => {
            const v = request.headers[h.toLowerCase()];
            return Array.isArray(v) ? v[0] : v;
          },
          ip: request.ip,
        };
        const out = await runWithContext(work, () => handler(input as never, info));
        if (out.headers) for (const [k, v] of Object.entries(out.headers)) reply.header(k, v);
        return reply.status(out.status).send(out.body);
      },
    });
  }

  const openapi = buildOpenApi(contract);
  app.get('/openapi.json', async () => openapi);
  app.get('/health/live', async () => ({ status: 'ok' }));
  app.get('/health/ready', async (_request, reply) => {
    const checks: Record<string, string> = {};
    let ok = ready;
    await Promise.all(
      Object.entries(options.readiness).map(async ([name, check]) => {
        try {
          await check();
          checks[name] = 'ok';
        } catch (err) {
          ok = false;
          checks[name] = (err as Error).message || 'failed';
        }
      }),
    );
    if (!ready) checks.service = 'not ready';
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready', checks });
  });

  return { app, setReady: (r) => { ready = r; } };
}
