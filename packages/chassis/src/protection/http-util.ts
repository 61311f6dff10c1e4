import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction, onRequestHookHandler, RouteOptions } from 'fastify';
import { timingSafeEqual } from 'node:crypto';
import { PROBLEM_CONTENT_TYPE, ProblemError } from '../errors/problem.ts';
import { HEADERS } from '../http/headers.ts';

/**
 * Answers with a problem+json body straight from a hook. The protection hooks send their own answers rather than
 * throwing into the app's error handler: that handler logs every 5xx at error level, and a service shedding
 * thousands of requests a second must not also write thousands of error lines.
 */
export function sendProblem(
  reply: FastifyReply,
  request: FastifyRequest,
  status: number,
  code: string,
  detail: string,
  headers: Record<string, string> = {},
  extensions: Record<string, unknown> = {},
): FastifyReply {
  const problem = new ProblemError(status, code, detail, extensions, headers);
  for (const [k, v] of Object.entries(problem.headers)) reply.header(k, v);
  return reply.status(status).type(PROBLEM_CONTENT_TYPE).send(problem.toProblem(request.url.split('?')[0]));
}

/**
 * `METHOD /path/template` of the route a request matched, e.g. `GET /prices/:symbol`: the name faults, route
 * groups and per-route limits use. Requests that matched no route are `METHOD *unmatched*`.
 */
export function routeKeyOf(request: FastifyRequest): string {
  return `${request.method} ${request.routeOptions.url ?? '*unmatched*'}`;
}

/**
 * The route key requests that matched no route (404) are limited by, whatever their method: one name, so the
 * limiter looks their rule up once and the metrics label stays bounded.
 */
export const UNMATCHED_ROUTE_KEY = '* *unmatched*';

/**
 * A protection check, shaped as a route's onRequest hook and as the not-found handler's preValidation hooks (the
 * earliest stage fastify gives a 404 handler hooks of its own): one function serves both.
 */
export type RequestGuard = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;

/**
 * `guard` for requests that matched no route, skipped where `exempt` says so for the raw path (an unknown
 * `/health/x` or `/admin/x` stays as exempt as the infrastructure routes it looks like). No onRoute hook reaches
 * the not-found handler, so this is how the protections cover it.
 */
export function unmatchedGuard(guard: RequestGuard, exempt: (routeKey: string, path: string) => boolean): RequestGuard {
  return (request, reply, done) => (exempt(UNMATCHED_ROUTE_KEY, request.url.split('?')[0]!) ? done() : guard(request, reply, done));
}

/** `METHOD /path/template` of a route being registered (one per method when it declares several). */
export function routeKeysOf(route: Pick<RouteOptions, 'method' | 'url'>): string[] {
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  return methods.map((m) => `${String(m).toUpperCase()} ${route.url}`);
}

const kProtectionHook = Symbol('simplebank.protectionHook');
type Marked = { [kProtectionHook]?: true };
type HookStage = 'onRequest' | 'preParsing';

/**
 * Adds a protection hook to a route being registered (in an `onRoute` hook): after the protection hooks added
 * before it, and before the route's own hooks (e.g. the fault admin routes' credential check), so the order of
 * protection is the order the plugins were installed in, whatever the route declares.
 */
export function addRouteHook(route: RouteOptions, stage: HookStage, hook: (...args: never[]) => unknown): void {
  (hook as Marked)[kProtectionHook] = true;
  const own = route[stage] as unknown;
  const list: unknown[] = own === undefined ? [] : Array.isArray(own) ? [...(own as unknown[])] : [own];
  let i = 0;
  while (i < list.length && (list[i] as Marked)[kProtectionHook]) i++;
  list.splice(i, 0, hook);
  (route as unknown as Record<HookStage, unknown>)[stage] = list;
}

/** The route template (or, for unmatched requests, the raw path) without the query. */
export function routePathOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? request.url.split('?')[0]!;
}

/** Routes operators and balancers need most when a service struggles: health, metrics, docs, admin. */
const INFRA_PREFIXES = ['/health/', '/metrics', '/admin/', '/openapi.json'];

/** Whether a path is infrastructure (never shed, rate-limited, or hit by a `*` fault). */
export function isInfraPath(path: string): boolean {
  return INFRA_PREFIXES.some((p) => path === p || path.startsWith(p));
}

/** Constant-time comparison, so response timing does not reveal how much of a guessed token was right. */
export function tokenMatches(given: string | string[] | undefined, expected: string): boolean {
  if (typeof given !== 'string' || given.length === 0 || expected.length === 0) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The admin routes' credential check, as a route-level onRequest hook: answers 401 unless `x-service-token` is the
 * service credential, before the body is even read.
 */
export function serviceCredentialGuard(serviceToken: string): onRequestHookHandler {
  return (request, reply, done) => {
    if (tokenMatches(request.headers[HEADERS.serviceToken], serviceToken)) return done();
    sendProblem(reply, request, 401, 'unauthorized', 'service credential required (x-service-token)');
  };
}
