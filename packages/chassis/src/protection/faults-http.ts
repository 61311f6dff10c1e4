import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { describeFault, FAULT_ID_PATTERN, faultSpecSchema, type Fault, type FaultAction, type FaultRegistry } from './faults.ts';
import { addRouteHook, isInfraPath, routeKeysOf, sendProblem, serviceCredentialGuard } from './http-util.ts';

export const FAULTS_ADMIN_PATH = '/admin/faults';

export interface FaultsPluginOptions {
  registry: FaultRegistry;
  /** The service credential the admin routes require in `x-service-token`. */
  serviceToken: string;
  /** Changes to the faults are logged at info: an operator must be able to tell why a service misbehaved. */
  log?: { info(obj: object, msg: string): void };
}

/** A request held by a latency or hang fault. */
interface Hold {
  action: FaultAction;
  request: FastifyRequest;
  reply: FastifyReply;
  done: () => void;
  timer: NodeJS.Timeout | undefined;
  onClientGone: () => void;
}

const injected = (reply: FastifyReply, request: FastifyRequest, fault: Fault, detail: string) =>
  sendProblem(reply, request, 503, 'injected_fault', detail, {}, { faultId: fault.id });

/**
 * Fault injection over HTTP: the admin routes (`GET|PUT|DELETE /admin/faults[/:id]`, service credential
 * required) and a route-level onRequest hook applying incoming faults, attached to each route as it is registered
 * (call this BEFORE declaring the routes). When the registry is disabled nothing is registered: the admin routes
 * answer 404 like any unknown path and no hook runs.
 */
export function faultsPlugin(app: FastifyInstance, options: FaultsPluginOptions): void {
  const { registry, serviceToken, log } = options;
  if (!registry.enabled) return;

  registerAdminRoutes(app, registry, serviceToken, log);

  const holds = new Set<Hold>();
  /** Ends a hold: `continue` lets the request through, `error` answers the injected 503, `closing` the shutdown 503. */
  const finish = (hold: Hold, outcome: 'continue' | 'error' | 'closing') => {
    if (!holds.delete(hold)) return;
    clearTimeout(hold.timer);
    hold.reply.raw.off('close', hold.onClientGone);
    if (outcome === 'continue') hold.done();
    else if (outcome === 'error') injected(hold.reply, hold.request, hold.action.fault, `injected fault ${hold.action.fault.id}`);
    else injected(hold.reply, hold.request, hold.action.fault, `released from injected fault ${hold.action.fault.id}: server closing`);
  };

  const hold = (action: FaultAction, request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const h: Hold = { action, request, reply, done, timer: undefined, onClientGone: () => {} };
    // The client gave up: forget the request (nothing to answer), keep no timer.
    h.onClientGone = () => {
      holds.delete(h);
      clearTimeout(h.timer);
    };
    holds.add(h);
    reply.raw.once('close', h.onClientGone);
    if (!action.hang) h.timer = setTimeout(() => finish(h, action.error ? 'error' : 'continue'), action.latencyMs);
  };

  // A fault cleared or expired releases what it holds: those requests carry on as if it had never been there.
  const unsubscribe = registry.onRemoved((fault) => {
    for (const h of holds) if (h.action.fault === fault) finish(h, 'continue');
  });

  // A route-level hook per route, its key worked out once; with no fault set, a request costs one size check.
  app.addHook('onRoute', (route) => {
    // The admin routes are never faulted: a `*` hang must not lock the operator out of clearing it.
    if (route.url.startsWith(FAULTS_ADMIN_PATH)) return;
    const infra = isInfraPath(route.url);
    const keys = routeKeysOf(route);
    const byMethod = new Map(keys.map((key) => [key.slice(0, key.indexOf(' ')), key]));
    const only = keys.length === 1 ? keys[0] : undefined;
    const applyFault: onRequestHookHandler = (request, reply, done) => {
      if (registry.size() === 0) return done();
      const routeKey = only ?? byMethod.get(request.method);
      const action = routeKey === undefined ? undefined : registry.incoming(routeKey, infra);
      if (!action) return done();
      if (action.hang || action.latencyMs > 0) return hold(action, request, reply, done);
      if (action.error) return injected(reply, request, action.fault, `injected fault ${action.fault.id}`);
      done();
    };
    addRouteHook(route, 'onRequest', applyFault);
  });
  // preClose runs before fastify waits for requests in flight: held requests must be answered or close never ends.
  app.addHook('preClose', (done) => {
    for (const h of [...holds]) finish(h, 'closing');
    done();
  });
  app.addHook('onClose', (_instance, done) => {
    unsubscribe();
    done();
  });
}

function registerAdminRoutes(app: FastifyInstance, registry: FaultRegistry, serviceToken: string, log: FaultsPluginOptions['log']): void {
  // Route-level onRequest: the credential is checked before the body is even read.
  const guard = serviceCredentialGuard(serviceToken);
  const idOf = (request: FastifyRequest) => (request.params as { id: string }).id;

  app.get(FAULTS_ADMIN_PATH, { onRequest: guard }, async () => ({ enabled: true, faults: registry.list().map((f) => describeFault(f)) }));

  app.put(`${FAULTS_ADMIN_PATH}/:id`, { onRequest: guard }, async (request, reply) => {
    const id = idOf(request);
    if (!FAULT_ID_PATTERN.test(id)) return sendProblem(reply, request, 400, 'validation_failed', 'fault id: letters, digits, ".", "_" or "-", at most 64', { }, { errors: [{ field: 'params.id', message: 'invalid fault id' }] });
    const parsed = faultSpecSchema.safeParse(request.body);
    if (!parsed.success) {
      const errors = parsed.error.issues.map((i) => ({ field: ['body', ...i.path].join('.'), message: i.message }));
      return sendProblem(reply, request, 400, 'validation_failed', 'invalid fault', {}, { errors });
    }
    const fault = registry.set(id, parsed.data);
    log?.info({ fault: describeFault(fault) }, 'fault injected');
    return describeFault(fault);
  });

  app.delete(`${FAULTS_ADMIN_PATH}/:id`, { onRequest: guard }, async (request, reply) => {
    const id = idOf(request);
    if (!registry.delete(id)) return sendProblem(reply, request, 404, 'fault_not_found', `fault ${id} not found`);
    log?.info({ faultId: id }, 'fault cleared');
    return reply.status(204).send();
  });

  app.delete(FAULTS_ADMIN_PATH, { onRequest: guard }, async () => {
    const cleared = registry.clear();
    log?.info({ cleared }, 'all faults cleared');
    return { cleared };
  });
}
