import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type preValidationHookHandler } from 'fastify';
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { Contract, Handlers, RequestInfo, RouteDef, RouteOutput } from '../contract/define.ts';
import { buildOpenApi } from '../contract/openapi.ts';
import { isUpstreamError, type UpstreamError } from '../client/errors.ts';
import { isProblemError, PROBLEM_CONTENT_TYPE, ProblemError, problems } from '../errors/problem.ts';
import { runWithContext, type WorkContext } from '../trace/context.ts';
import { newRequestId } from '../trace/ids.ts';
import { createWorkContext, workStorage } from '../trace/work.ts';
import { serverSpanHook } from '../trace/http-server.ts';
import { endServerSpan, failSpan } from '../trace/spans.ts';
import type { Tracing } from '../trace/tracing.ts';
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
  /**
   * Deadline of a request that arrives without one (`x-deadline-ms`), and the longest one accepted from a caller:
   * the edge of the system sets the operation's deadline here. 0 or unset: only the caller's deadline applies.
   */
  defaultDeadlineMs?: number;
  /**
   * Runs once the app exists and before any route is declared: the place for plugins that attach per-route hooks
   * when routes are registered (server protection). No onRoute hook reaches the not-found handler: what protects
   * requests that match no route comes back as `notFoundHooks`, run as that handler's preValidation hooks.
   */
  beforeRoutes?: (app: FastifyInstance) => { notFoundHooks?: preValidationHookHandler[] } | void;
  /** The service's tracing: a server span per request on the contract's routes (none when absent). */
  tracing?: Tracing | undefined;
  /** Serve the contract's routes (default true). A worker instance (SERVICE_ROLE=worker) serves only the chassis' own. */
  contractRoutes?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    work: WorkContext;
  }
}

/**
 * A handler's second argument. A class rather than a literal with a closure, so a request allocates one small
 * object; `ip` is read from the socket only if a handler asks for it.
 */
class IncomingRequestInfo implements RequestInfo {
  readonly requestId: string;
  declare deadline?: number;
  readonly #request: FastifyRequest;

  constructor(request: FastifyRequest, work: WorkContext) {
    this.#request = request;
    this.requestId = work.requestId;
    if (work.deadline !== undefined) this.deadline = work.deadline;
  }

  header(name: string): string | undefined {
    const v = this.#request.headers[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  }

  get ip(): string {
    return this.#request.ip;
  }
}

const BEARER = /^Bearer\s+/i;

function hasServiceToken(request: FastifyRequest, expected: string): boolean {
  const bearer = request.headers.authorization?.replace(BEARER, '');
  const given = (request.headers[HEADERS.serviceToken] as string | undefined) ?? bearer;
  return tokenMatches(given, expected);
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

/**
 * A dependency call that failed and that the handler let through, as this service's answer: the dependency timed
 * out → 504 `upstream_timeout`; it is down, overloaded or refused by our own pipeline (open circuit, full
 * bulkhead) → 503 `upstream_unavailable` with `Retry-After` (the dependency's, or the circuit's time to its probe,
 * else 1 s); it failed or broke its contract → 502 `bad_gateway`. An unexpected 4xx stays a 500: we sent
 * something it refused. Which dependency failed is logged, not told.
 */
function upstreamProblem(err: UpstreamError): ProblemError | undefined {
  const { kind, status } = err;
  if (kind === 'timeout' || status === 504) return new ProblemError(504, 'upstream_timeout', 'a service needed for this request did not answer in time');
  if (kind === 'rejected' || kind === 'connection' || status === 503 || status === 429) {
    const seconds = Math.min(3600, Math.max(1, Math.ceil((err.retryAfterMs ?? 1000) / 1000)));
    return new ProblemError(503, 'upstream_unavailable', 'a service needed for this request is unavailable; try again shortly', {}, { 'retry-after': String(seconds) });
  }
  if (kind === 'invalid_response' || (status !== undefined && status >= 500)) return new ProblemError(502, 'bad_gateway', 'a service needed for this request failed');
  return undefined;
}

/** Maps whatever a handler or fastify threw to a problem; unknown errors become an opaque 500. */
function toProblemError(err: unknown): ProblemError {
  if (isProblemError(err)) return err;
  if (isUpstreamError(err)) {
    const mapped = upstreamProblem(err);
    if (mapped) return mapped;
  }
  const fastifyErr = err as { statusCode?: number; code?: string; message?: string };
  if (typeof fastifyErr.statusCode === 'number' && fastifyErr.statusCode >= 400 && fastifyErr.statusCode < 500) {
    const code = fastifyErr.statusCode === 413 ? 'payload_too_large' : fastifyErr.statusCode === 415 ? 'unsupported_media_type' : 'bad_request';
    return new ProblemError(fastifyErr.statusCode, code, fastifyErr.message);
  }
  return new ProblemError(500, 'internal', 'internal error');
}

/** Marks on route configs: the contract's own routes, and the routes that log through a route-level onResponse hook. */
const CONTRACT_ROUTE = Symbol('chassis.contractRoute');
const ACCESS_LOG_HOOK = Symbol('chassis.accessLogHook');
/** When the request started (Date.now()), for the access log line of routes without the onResponse hook. */
const STARTED_AT = Symbol('chassis.startedAt');
type RouteMarks = { [CONTRACT_ROUTE]?: true; [ACCESS_LOG_HOOK]?: true };
type Timed = FastifyRequest & { [STARTED_AT]?: number };

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
    // Ids must be unique across processes and restarts, not fastify's per-process counter: random UUIDs.
    genReqId: newRequestId,
  });
  app.decorateRequest('work', null as unknown as WorkContext);

  /**
   * The access log line: every response, at debug, or at error for a 5xx that is not this service protecting
   * itself or its callers (503 not ready, 504 deadline passed). Successes log at debug, so nothing is built (nor
   * the context entered) unless that level is on.
   */
  const logAccess = (request: FastifyRequest, reply: FastifyReply, status: number, hooked: boolean): void => {
    // Every response passes here once: the request's server span (contract routes, tracing on) ends with it.
    const span = (request.work as WorkContext | null)?.span;
    if (span !== undefined) endServerSpan(span, status);
    const level = status >= 500 && status !== 503 && status !== 504 ? 'error' : 'debug';
    if (!log.isLevelEnabled(level)) return;
    // Routes with the onResponse hook have fastify's timing; the others timed themselves from onRequest.
    const startedAt = (request as Timed)[STARTED_AT];
    const ms = hooked || startedAt === undefined ? reply.elapsedTime : Date.now() - startedAt;
    runWithContext(request.work, () => log[level]({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status, ms: Math.round(ms) }, 'request'));
  };

  // Callback-style hooks, not async ones: an async hook costs fastify a promise per request, and once
  // AsyncLocalStorage is on (it is, for the handlers) every promise also runs the async-hooks machinery.
  const defaultDeadlineMs = options.defaultDeadlineMs ?? 0;
  app.addHook('onRequest', (request, reply, done) => {
    const now = Date.now();
    (request as Timed)[STARTED_AT] = now;
    const headers = request.headers;
    const deadlineHeader = headers[HEADERS.deadline];
    const remaining = deadlineHeader === undefined ? NaN : Number(deadlineHeader);
    let deadline = Number.isFinite(remaining) && remaining >= 0 ? now + remaining : undefined;
    if (defaultDeadlineMs > 0 && (deadline === undefined || deadline > now + defaultDeadlineMs)) deadline = now + defaultDeadlineMs;
    const work = createWorkContext(
      headers[HEADERS.traceparent] as string | undefined,
      headers[HEADERS.tracestate] as string | undefined,
      (headers[HEADERS.requestId] as string | undefined) ?? request.id,
      deadline,
    );
    request.work = work;
    reply.header(HEADERS.requestId, work.requestId);
    done();
  });

  // No global onResponse hook: with one, fastify puts 'finish' and 'error' listeners on every response (~5% of a
  // trivial call's server CPU, bench/rpc). The contract's routes, the 404 handler and the error handler log their
  // line themselves when they send; every other route (health, OpenAPI, a service's `extend` routes) gets the
  // access log as a route-level onResponse hook.
  const accessLogHook = (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    logAccess(request, reply, reply.statusCode, true);
    done();
  };
  app.addHook('onRoute', (route) => {
    if ((route.config as RouteMarks | undefined)?.[CONTRACT_ROUTE]) return;
    // A route may opt out (`config: { accessLog: false }`): GET /metrics, scraped every few seconds, is no news.
    if ((route.config as { accessLog?: boolean } | undefined)?.accessLog === false) return;
    const own = route.onResponse;
    route.onResponse = own === undefined ? [accessLogHook] : [accessLogHook, ...(Array.isArray(own) ? own : [own])];
    route.config = { ...route.config, [ACCESS_LOG_HOOK]: true };
  });
  const hasAccessLogHook = (request: FastifyRequest): boolean => (request.routeOptions.config as RouteMarks | undefined)?.[ACCESS_LOG_HOOK] === true;

  const handleError = (err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const problem = toProblemError(err);
    if (problem.status >= 500) {
      const span = (request.work as WorkContext | null)?.span;
      if (span !== undefined) failSpan(span, err);
      // A dependency failing is logged as such, at warn: when one is down, every request says so.
      if (isUpstreamError(err) && problem.status !== 500) {
        const { service: dependency, operation, kind, status, code } = err;
        runWithContext(request.work, () => log.warn({ dependency, operation, kind, status, code, answered: problem.status }, 'dependency call failed'));
      } else runWithContext(request.work, () => log.error({ err }, 'request failed'));
    }
    sendProblem(reply, request, problem);
    if (!hasAccessLogHook(request)) logAccess(request, reply, reply.statusCode, false);
    return reply;
  };
  app.setErrorHandler(handleError);

  /** A handler's result, sent; then its access line, unless sending failed and the error handler answered. */
  const sendOutput = (request: FastifyRequest, reply: FastifyReply, out: RouteOutput<RouteDef>): void => {
    if (out.headers) for (const k in out.headers) reply.header(k, out.headers[k]);
    reply.status(out.status).send(out.body);
    if (reply.statusCode === out.status) logAccess(request, reply, out.status, false);
  };
  /** A handler's rejection, answered as fastify answers a throw: an Error goes through its error path to handleError. */
  const sendError = (request: FastifyRequest, reply: FastifyReply, err: unknown): void => {
    if (reply.sent) return;
    // fastify takes only Error instances for errors when sent; anything else thrown goes to handleError directly.
    if (err instanceof Error) reply.send(err);
    else handleError(err, request, reply);
  };

  const prepared = options.beforeRoutes?.(app);
  // Hooks of the not-found handler's own, not app-level ones: those would run for every request. A request shed
  // or limited here is answered by the hook and, like one on a contract route, writes no access line.
  app.setNotFoundHandler({ preValidation: prepared?.notFoundHooks ?? [] }, (request, reply) => {
    sendProblem(reply, request, new ProblemError(404, 'route_not_found', `no route ${request.method} ${request.url.split('?')[0]}`));
    logAccess(request, reply, reply.statusCode, false);
  });

  for (const [name, def] of options.contractRoutes === false ? [] : (Object.entries(contract.routes) as [string, RouteDef][])) {
    const handler = handlers[name];
    if (!handler) throw new Error(`${contract.service}: no handler for route ${name}`);
    // Worked out once per route, so a request only runs the parts its route has.
    const { params, query, body, headers } = def;
    const needsServiceToken = def.auth === 'service';
    const config: RouteMarks = { [CONTRACT_ROUTE]: true };
    app.route({
      method: def.method,
      url: def.path,
      config,
      ...(options.tracing ? { onRequest: serverSpanHook(options.tracing.tracer, def.method, def.path) } : {}),
      // Not an async function: the reply is sent from the handler's own promise, so a request costs one promise
      // (the handler's) plus one reaction, instead of four. Each promise also runs AsyncLocalStorage's hooks.
      handler: (request, reply) => {
        if (needsServiceToken && !hasServiceToken(request, options.serviceToken)) throw problems.unauthorized('service credential required');
        const work = request.work;
        if (work.deadline !== undefined && work.deadline <= Date.now()) {
          throw new ProblemError(504, 'deadline_exceeded', 'the caller\'s deadline has already passed');
        }
        const input = {
          params: params ? parsePart(params, request.params, 'params') : undefined,
          query: query ? parsePart(query, request.query, 'query') : undefined,
          body: body ? parsePart(body, request.body, 'body') : undefined,
          headers: headers ? parsePart(headers, request.headers, 'headers') : undefined,
        };
        // The handler runs in the request's context: its awaits, logs and outgoing calls carry the ids and deadline.
        const out = workStorage.run(work, handler, input as never, new IncomingRequestInfo(request, work));
        if (typeof (out as Partial<Promise<unknown>> | undefined)?.then !== 'function') {
          sendOutput(request, reply, out as unknown as RouteOutput<RouteDef>);
          return;
        }
        // As fastify does for a promise a handler returns: a throw while sending becomes an error response, never
        // an unhandled rejection.
        out.then(
          (result) => {
            try {
              sendOutput(request, reply, result as RouteOutput<RouteDef>);
            } catch (err) {
              sendError(request, reply, err);
            }
          },
          (err: unknown) => {
            try {
              sendError(request, reply, err);
            } catch (sendErr) {
              reply.send(sendErr);
            }
          },
        );
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
