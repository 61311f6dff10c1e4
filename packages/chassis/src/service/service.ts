import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import { createClient, type Client, type ClientPolicy } from '../client/client.ts';
import { baseConfigShape, loadConfig, type BaseConfig } from '../config/config.ts';
import type { Contract, EventData, EventDef, Handlers } from '../contract/define.ts';
import { createDb, type Db, type Queryable, type TxClient } from '../data/db.ts';
import { migrate } from '../data/migrate.ts';
import { clientMetrics, createServiceMetrics, httpServerMetrics, loadSheddingMetrics, messagingMetrics, metricsRoute, resilienceMetrics, type MessagingMetrics, type ServiceMetrics } from '../metrics/index.ts';
import { createHttpServer } from '../http/server.ts';
import { listenOnSocket } from '../http/socket.ts';
import { createLogger } from '../log/logger.ts';
import type { Bus, Delivery } from '../messaging/bus.ts';
import { runConsumer, startQueuedWork, type QueuedWork } from '../trace/consumer.ts';
import { createBus } from '../messaging/create-bus.ts';
import { deadLetterAdminRoutes } from '../messaging/admin.ts';
import type { EventEnvelope } from '../messaging/envelope.ts';
import { idempotentHandler } from '../messaging/inbox.ts';
import { idempotentBatchHandler } from '../messaging/inbox-batch.ts';
import type { BatchLimits, InContext } from '../data/group-commit.ts';
import { appendToOutbox } from '../messaging/outbox.ts';
import { startOutboxRelay, type OutboxRelay } from '../messaging/relay.ts';
import { traceAdminRoutes } from '../trace/admin.ts';
import { tracingConfigShape, type TracingConfig } from '../trace/config.ts';
import type { TraceCarrier } from '../trace/spans.ts';
import { createTracing, type Tracing } from '../trace/tracing.ts';
import { protectionConfigShape, type ProtectionConfig } from '../protection/config.ts';
import { createFaultRegistry } from '../protection/faults.ts';
import { faultPolicy } from '../protection/faults-policy.ts';
import { registerProtection, type Protection, type ProtectionOptions } from '../protection/protect.ts';
import { resilienceOptionsFromEnv, resolveResilienceOptions, type ResilienceOptions } from '../resilience/options.ts';
import { createResiliencePipeline, type ResiliencePipeline } from '../resilience/pipeline.ts';
import { resilienceAdminRoutes } from './admin.ts';

/** Env name of a dependency's base URL: `market-data` → `MARKET_DATA_URL`. */
export const urlEnvName = (service: string): string => `${service.replace(/-/g, '_').toUpperCase()}_URL`;

export interface Subscription<E extends EventDef = EventDef> {
  /** Durable consumer name, `<service>.<purpose>`; instances of a service share it. */
  name: string;
  events: E[];
  /** Runs in a transaction with the inbox record: an event's effect happens once, however often it arrives. */
  handle(event: EventEnvelope<EventData<E>>, tx: Queryable, attempt: number): Promise<void>;
  maxAttempts?: number;
  backoffMs?: number;
  concurrency?: number;
  /**
   * The handler's first step is a query: record the event in the inbox in the same message (one round trip fewer
   * per event). Anything the handler does before its first query must be harmless to repeat (inbox.ts).
   */
  inboxWithFirstQuery?: boolean;
  /**
   * Group commit (messaging/inbox-batch.ts): deliveries that arrive while the subscription's transactions are busy
   * are handled together, in one transaction, by this; `handle` still handles a lone delivery, and each delivery
   * of a batch that failed on its own. Give `concurrency` (deliveries in flight) room above `batch.transactions`,
   * or batches stay small.
   */
  handleBatch?(items: ReadonlyArray<BatchEvent<EventData<E>>>, tx: TxClient): Promise<void>;
  /**
   * Group commit: deliveries per transaction (default 32) and transactions in flight (default 2). Set without
   * `handleBatch`, a batch runs `handle` for each delivery in turn in one transaction (each sees what the ones
   * before it wrote); if one throws, every delivery of the batch is handled again alone.
   */
  batch?: Partial<BatchLimits>;
}

/** A delivery in a batch: run what is done for it in its own work context (`inContext`), so it stays in its trace. */
export interface BatchEvent<T = unknown> {
  event: EventEnvelope<T>;
  attempt: number;
  inContext: InContext;
}

/** The group-commit limits a subscription gets unless it says otherwise. */
export const DEFAULT_BATCH_LIMITS: BatchLimits = { maxSize: 32, transactions: 2 };

export interface ServiceContext<Cfg, Deps extends Record<string, Contract>> {
  name: string;
  config: Cfg & BaseConfig;
  log: Logger;
  /** The service's own database (throws if the service declared none). */
  db: Db;
  bus: Bus;
  clients: { [K in keyof Deps]: Client<Deps[K]> };
  /** The resilience pipeline of each dependency, by its service name (breaker, bulkhead, budget, stats). */
  resilience: ReadonlyMap<string, ResiliencePipeline>;
  /** This instance's Prometheus metrics (`GET /metrics`): declare business metrics here (docs/observability.md). */
  metrics: ServiceMetrics;
  /**
   * Appends events to the outbox inside the caller's transaction; the relay publishes them after commit. The event
   * continues the current request's or delivery's trace, or `trace` when given (a context stored with the work).
   */
  publish<E extends EventDef>(tx: Queryable, event: E, message: { subject: string; data: EventData<E>; correlationId?: string; causationId?: string; trace?: TraceCarrier }): Promise<EventEnvelope>;
  /**
   * A work context for work this service queued for itself in its own table (neither a request nor an event), that
   * continues the trace stored with the work (`outgoingTraceparent()` where it was queued): what runs in it (its
   * calls, queries and events) stays in that trace, under a span `name` when tracing is on. End it when done.
   */
  startQueuedWork(name: string, trace: TraceCarrier | undefined, attributes: Record<string, string | number | boolean>): QueuedWork;
}

export interface ServiceParts<C extends Contract> {
  routes: Handlers<C>;
  subscriptions?: Subscription[];
  /** Extra readiness checks (name → throws when not ready). */
  readiness?: Record<string, () => Promise<void>>;
  /** Background work to start after the server listens (timers, feeds); returns its stopper. */
  background?: () => (() => Promise<void>) | void;
  /** Routes outside the contract that need the raw fastify app (e.g. a server-sent events stream). */
  extend?: (app: FastifyInstance) => void;
  /** Who the caller is (services facing clients): run after load shedding, before rate limits (ProtectionOptions). */
  authenticate?: (request: FastifyRequest) => Promise<void>;
}

export interface ServiceDefinition<C extends Contract, S extends z.ZodRawShape, Deps extends Record<string, Contract>> {
  contract: C;
  defaultPort: number;
  /** Extra env keys this service reads, validated with the base ones. */
  config?: S;
  /** Folder of the service's SQL migrations; omit for a stateless service. */
  migrations?: URL;
  /** Whether the service publishes or consumes events. */
  bus?: boolean;
  /** Contracts of the services it calls; each becomes a typed client at `ctx.clients.<key>`, URL from `<SERVICE>_URL`. */
  dependencies?: Deps;
  /**
   * Resilience options per dependency, by its service name (`'market-data': { retryAttempts: 2 }`), over the
   * chassis defaults; the `RESILIENCE_<DEP>_*` / `RESILIENCE_*` env variables win over both. `false`: no chassis
   * pipeline at all, only `clientPolicies` (an unprotected baseline in a benchmark, or a service bringing its own).
   */
  resilience?: Partial<Record<string, Partial<ResilienceOptions>>> | false;
  /** Extra policies for every client (e.g. metrics), inside the resilience pipeline: they see every attempt. */
  clientPolicies?: (dependency: string) => ClientPolicy[];
  /**
   * Deadline of a request arriving without one (and the longest accepted from a caller); `REQUEST_DEADLINE_MS`
   * wins. Default none: a service inherits its caller's deadline; the edge (the gateway) sets one.
   */
  requestDeadlineMs?: number;
  /** Server protection beyond the defaults: expensive routes' concurrency, routes never shed, rate limits. */
  protection?: Pick<ProtectionOptions, 'routeConcurrency' | 'sheddingExempt' | 'rateLimit'>;
  setup(ctx: ServiceContext<z.infer<z.ZodObject<S>>, Deps>): Promise<ServiceParts<C>> | ServiceParts<C>;
}

export const defineService = <C extends Contract, S extends z.ZodRawShape = Record<never, z.ZodType>, Deps extends Record<string, Contract> = Record<never, Contract>>(
  def: ServiceDefinition<C, S, Deps>,
): ServiceDefinition<C, S, Deps> => def;

export interface RunningService<Cfg = unknown, Deps extends Record<string, Contract> = Record<string, Contract>> {
  url: string;
  port: number;
  app: FastifyInstance;
  context: ServiceContext<Cfg, Deps>;
  /** Load shedding, rate limits and the fault registry of this instance. */
  protection: Protection;
  /** Its tracing (tracer, ring of recent spans), undefined when OTEL_SDK_DISABLED=true. */
  tracing: Tracing | undefined;
  /** Graceful: stop taking work, drain requests and consumers, flush the outbox relay, close pools. */
  stop(): Promise<void>;
}

const missing = (what: string) =>
  new Proxy({}, { get: (_t, prop) => { if (prop === 'then') return undefined; throw new Error(`this service has no ${what}`); } });

export async function startService<C extends Contract, S extends z.ZodRawShape, Deps extends Record<string, Contract>>(
  def: ServiceDefinition<C, S, Deps>,
  env: Record<string, string | undefined> = process.env,
): Promise<RunningService<z.infer<z.ZodObject<S>>, Deps>> {
  const name = def.contract.service;
  const depShape: Record<string, z.ZodType> = {};
  for (const dep of Object.values(def.dependencies ?? {})) {
    depShape[urlEnvName(dep.service)] = z.string().url().describe(`base URL of the ${dep.service} service (http://host:port, or unix:<path> for its SOCKET_PATH on this machine)`);
  }
  const shape = {
    ...baseConfigShape,
    PORT: baseConfigShape.PORT.default(def.defaultPort),
    ...(def.migrations ? { DATABASE_URL: z.string().url().describe(`${name}'s own PostgreSQL database`) } : {}),
    ...(def.bus ? { BUS_URL: z.string().url().describe('event bus: postgres://… (pg-boss) or nats://… (JetStream)') } : {}),
    ...depShape,
    ...tracingConfigShape,
    ...protectionConfigShape,
    REQUEST_DEADLINE_MS: z.coerce
      .number()
      .int()
      .min(0)
      .max(3_600_000)
      .default(def.requestDeadlineMs ?? 0)
      .describe('deadline in ms of a request that arrives without one (and the longest accepted); 0 = the caller\'s only'),
    ...(def.config ?? {}),
  };
  const config = loadConfig(name, shape, env) as unknown as z.infer<z.ZodObject<S>> & BaseConfig & Record<string, string>;
  // The chassis' own keys, typed (the config above is typed for the service's keys).
  const own = config as unknown as ProtectionConfig & { REQUEST_DEADLINE_MS: number };
  const log = createLogger({ service: name, version: def.contract.version, level: config.LOG_LEVEL, ...(config.SERVICE_INSTANCE ? { instance: config.SERVICE_INSTANCE } : {}) });
  const metrics = createServiceMetrics({ onOverflow: (metric) => log.warn({ metric }, 'metric has too many label sets; further ones are counted as "other"') });
  // Spans unless OTEL_SDK_DISABLED: a ring of recent ones for /admin/traces, and OTLP export when configured.
  const tracing = createTracing({
    service: name,
    version: def.contract.version,
    ...(config.SERVICE_INSTANCE ? { instance: config.SERVICE_INSTANCE } : {}),
    config: config as unknown as TracingConfig,
  });

  const db = def.migrations ? createDb(config.DATABASE_URL!, { applicationName: name, max: config.DB_POOL_MAX }) : undefined;
  if (db) {
    const { applied } = await migrate(db, def.migrations);
    if (applied.length) log.info({ applied }, 'migrations applied');
  }
  const bus = def.bus ? createBus({ url: config.BUS_URL!, service: name, log }) : undefined;
  await bus?.start();

  // One registry for the server's incoming faults and the clients' outgoing ones; off unless FAULTS_ENABLED.
  const faults = createFaultRegistry({ enabled: own.FAULTS_ENABLED });
  const pipelines = createPipelines(def, env, log);
  resilienceMetrics(metrics, pipelines);
  const dependencyMetrics = clientMetrics(metrics);
  const clients: Record<string, Client<Contract>> = {};
  for (const [key, dep] of Object.entries(def.dependencies ?? {})) {
    const pipeline = pipelines.get(dep.service);
    // The attempt timeout and the pool size belong to the client, not to the policies: a service with
    // `resilience: false` still takes them from its env (RESILIENCE_[<DEP>_]ATTEMPT_TIMEOUT_MS, …_CONNECTIONS).
    const { attemptTimeoutMs, connections } = pipeline?.options ?? resolveResilienceOptions(resilienceOptionsFromEnv(env, dep.service));
    clients[key] = createClient(dep, {
      baseUrl: config[urlEnvName(dep.service)]!,
      serviceToken: config.SERVICE_TOKEN,
      timeoutMs: attemptTimeoutMs,
      connections,
      // Outermost first: the pipeline, then the service's own, then injected faults innermost, so retry, breaker
      // and bulkhead see an injected failure as a real attempt. A disabled policy is not in the list at all. The
      // metrics are observers, not policies: the client tells them from the reaction it has on each call and each
      // attempt (no promise of their own) when nothing sits between them and the call or the wire.
      policies: [
        ...(config.METRICS_ENABLED ? [dependencyMetrics.calls(dep.service)] : []), // metrics: one logical call, outside everything
        ...(pipeline?.policies ?? []),
        ...(config.METRICS_ENABLED ? [dependencyMetrics.attempts(dep.service)] : []), // metrics: each attempt the retry and breaker let out (inside the service's own policies and faults, if any)
        ...(def.clientPolicies?.(dep.service) ?? []),
        ...(faults.enabled ? [faultPolicy(faults, dep.service, { attemptTimeoutMs })] : []),
      ],
    });
  }

  const context: ServiceContext<z.infer<z.ZodObject<S>>, Deps> = {
    name,
    config,
    log,
    db: db ?? (missing('database') as Db),
    bus: bus ?? (missing('bus') as Bus),
    clients: clients as ServiceContext<unknown, Deps>['clients'],
    resilience: pipelines,
    metrics,
    async publish(tx, event, message) {
      const parsed = event.data.parse(message.data);
      const [envelope] = await appendToOutbox(tx, name, [{ type: event.type, subject: message.subject, data: parsed, ...(message.correlationId ? { correlationId: message.correlationId } : {}), ...(message.causationId ? { causationId: message.causationId } : {}), ...(message.trace ? { trace: message.trace } : {}) }], tracing?.tracer);
      return envelope!;
    },
    startQueuedWork: (name, trace, attributes) => startQueuedWork(tracing?.tracer, name, trace, attributes),
  };

  const parts = await def.setup(context);
  const readiness: Record<string, () => Promise<void>> = { ...(parts.readiness ?? {}) };
  if (db) readiness.database = () => db.ping();
  if (bus) readiness.bus = () => bus.ping();
  let protection!: Protection;
  const { app, setReady } = createHttpServer({
    contract: def.contract,
    handlers: parts.routes as Handlers<Contract>,
    log,
    serviceToken: config.SERVICE_TOKEN,
    readiness,
    defaultDeadlineMs: own.REQUEST_DEADLINE_MS,
    tracing,
    contractRoutes: config.SERVICE_ROLE !== 'worker',
    // Before the routes: protection attaches its hooks to each route as it is declared.
    beforeRoutes: (app) => {
      protection = registerProtection(app, { config: own, env, serviceToken: config.SERVICE_TOKEN, log, faults, ...def.protection, ...(parts.authenticate ? { authenticate: parts.authenticate } : {}) });
      if (config.METRICS_ENABLED) httpServerMetrics(app, metrics, { rateLimitGroup: (routeKey) => protection.limiter?.ruleFor(routeKey)?.group });
      return { notFoundHooks: protection.notFoundHooks };
    },
  });
  // Not ready while shedding load, so a balancer steers traffic to other instances.
  Object.assign(readiness, protection.readiness);
  resilienceAdminRoutes(app, { pipelines, protection, serviceToken: config.SERVICE_TOKEN, log });
  loadSheddingMetrics(metrics, protection.shedder);
  metricsRoute(app, metrics);
  traceAdminRoutes(app, { service: name, tracing, serviceToken: config.SERVICE_TOKEN });
  if (bus) deadLetterAdminRoutes(app, { service: name, bus, subscriptions: (parts.subscriptions ?? []).map((s) => s.name), serviceToken: config.SERVICE_TOKEN, log });
  parts.extend?.(app);

  // Consumers subscribe before this service publishes or serves anything: with pg-boss an event reaches only
  // the queues subscribed when it is published, so subscriptions must exist before any event can be caused.
  const messaging = db && bus ? messagingMetrics(metrics, { db, bus, log }) : undefined;
  // An api instance leaves deliveries, the relay and background work to a worker instance of the same service.
  const takesWork = config.SERVICE_ROLE !== 'api';
  if (bus && db && takesWork) {
    for (const sub of parts.subscriptions ?? []) {
      await bus.subscribe({
        name: sub.name,
        types: sub.events.map((e) => e.type),
        ...(sub.maxAttempts !== undefined ? { maxAttempts: sub.maxAttempts } : {}),
        ...(sub.backoffMs !== undefined ? { backoffMs: sub.backoffMs } : {}),
        ...(sub.concurrency !== undefined ? { concurrency: sub.concurrency } : {}),
        handler: messaging!.handler(sub.name, sub.events.map((e) => e.type), inboxHandlerOf(db, sub, tracing, messaging!)),
      });
    }
  }
  let relay: OutboxRelay | undefined;
  if (db && bus && takesWork) relay = startOutboxRelay({ db, bus, log, tracer: tracing?.tracer, onPublished: messaging!.published });
  await app.listen({ port: config.PORT, host: config.HOST });
  const socket = config.SOCKET_PATH ? await listenOnSocket(app, config.SOCKET_PATH) : undefined;
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;

  const stopBackground = takesWork ? parts.background?.() : undefined;
  setReady(true);
  log.info({ port }, `${name} ready`);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      setReady(false);
      await Promise.all([app.close(), socket?.close()]);
      if (stopBackground) await stopBackground();
      // The relay's last batch still needs the bus, so it stops first.
      await relay?.stop();
      await bus?.close();
      await Promise.all(Object.values(clients).map((c) => c.close()));
      await db?.close();
      // Spans still queued for export go out before the process ends.
      await tracing?.shutdown();
      log.info(`${name} stopped`);
    })();
    return stopping;
  };

  return { url: `http://${config.HOST}:${port}`, port, app, context, protection, tracing, stop };
}

/**
 * One resilience pipeline per dependency (shared by every client of it): the chassis defaults, then the service
 * definition's options, then `RESILIENCE_*` env. Every breaker state change is logged.
 */
function createPipelines<C extends Contract, S extends z.ZodRawShape, Deps extends Record<string, Contract>>(
  def: ServiceDefinition<C, S, Deps>,
  env: Record<string, string | undefined>,
  log: Logger,
): Map<string, ResiliencePipeline> {
  const pipelines = new Map<string, ResiliencePipeline>();
  if (def.resilience === false) return pipelines;
  for (const dep of Object.values(def.dependencies ?? {})) {
    if (pipelines.has(dep.service)) continue;
    const pipeline = createResiliencePipeline(dep.service, { ...def.resilience?.[dep.service], ...resilienceOptionsFromEnv(env, dep.service) });
    pipeline.breaker.onStateChange(({ dependency, from, to, manual }) => {
      const fields = { dependency, from, to: to.status, manual };
      // Opening is news an operator needs; closing again and probing are the recovery.
      if (to.status === 'open' || to.status === 'isolated') log.warn(fields, 'circuit breaker opened');
      else log.info(fields, `circuit breaker ${to.status}`);
    });
    pipelines.set(dep.service, pipeline);
  }
  return pipelines;
}

/**
 * Entry point for a service process: start, then shut down gracefully on SIGTERM/SIGINT
 * (exit 1 if draining takes longer than SHUTDOWN_GRACE_MS). Bad config exits 1 with the message.
 */
export async function runMain<C extends Contract, S extends z.ZodRawShape, Deps extends Record<string, Contract>>(def: ServiceDefinition<C, S, Deps>): Promise<void> {
  let running: RunningService<z.infer<z.ZodObject<S>>, Deps>;
  try {
    running = await startService(def);
  } catch (err) {
    process.stderr.write(`${def.contract.service} failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const shutdown = (signal: string) => {
    running.context.log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      running.context.log.error('shutdown took too long; exiting');
      process.exit(1);
    }, running.context.config.SHUTDOWN_GRACE_MS);
    timer.unref();
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        running.context.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

/**
 * The subscription's handler behind the inbox: each event's data parsed with its schema first, then the
 * subscription's `handle`, or its `handleBatch` with group commit (a malformed event then fails alone, before it
 * joins a batch).
 */
function inboxHandlerOf(db: Db, sub: Subscription, tracing: Tracing | undefined, messaging: MessagingMetrics) {
  const schemas = new Map(sub.events.map((e) => [e.type, e.data]));
  const parsed = (event: EventEnvelope): EventEnvelope<never> => {
    const schema = schemas.get(event.type);
    return { ...event, data: schema ? schema.parse(event.data) : event.data } as EventEnvelope<never>;
  };
  const withFirstQuery = sub.inboxWithFirstQuery === true;
  if (!sub.handleBatch && !sub.batch) {
    return idempotentHandler(db, sub.name, (event, tx, delivery) => sub.handle(parsed(event), tx, delivery.attempt), { withFirstQuery, tracer: tracing?.tracer });
  }
  const handleBatch =
    sub.handleBatch?.bind(sub) ??
    // Group commit without a batch step of its own: `handle` for each delivery in turn, in the one transaction.
    (async (items: ReadonlyArray<BatchEvent<never>>, tx: TxClient) => {
      for (const { event, attempt, inContext } of items) {
        tx.flushDeferred();
        await inContext(() => sub.handle(event, tx, attempt));
      }
    });
  const grouped = idempotentBatchHandler(
    db,
    sub.name,
    (event, tx, delivery) => sub.handle(event as EventEnvelope<never>, tx, delivery.attempt),
    (items, tx) => handleBatch(items.map((i) => ({ event: i.event as EventEnvelope<never>, attempt: i.delivery.attempt, inContext: i.inContext })), tx),
    { ...DEFAULT_BATCH_LIMITS, ...sub.batch },
    { withFirstQuery, observer: messaging.batches(sub.name) },
  );
  return (event: EventEnvelope, delivery: Delivery) => runConsumer(tracing?.tracer, sub.name, event, delivery.attempt, async () => grouped(parsed(event), delivery));
}
