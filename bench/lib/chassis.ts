// How the benchmarks build the chassis sides they measure (bench/rpc, bench/moleculer): services started by
// `startService` exactly as the bank's are, the chassis' own switches deciding what is on — `resilience: false` on
// the definition, LOAD_SHED_ENABLED, METRICS_ENABLED, OTEL_SDK_DISABLED. A caller is a service too: its client is
// `ctx.clients.<dependency>`, behind whatever the chassis wires for that dependency (the resilience pipeline, the
// client metrics policies, client spans). With every switch off that is the chassis core: the HTTP server with its
// request context, validation and access log, and the typed client without policies.
//
// Everything else (routes, handlers, keep-alive pool, attempt timeout, service token) is identical, so the
// difference between two stacks is what was switched on.
import type { Tracer } from '@opentelemetry/api';
import type { ZodRawShape } from 'zod';
import {
  contextFrom,
  defineContract,
  defineService,
  runWithContext,
  startService,
  urlEnvName,
  type Client,
  type Contract,
  type ServiceDefinition,
  type WorkContext,
} from '@simplebank/chassis';
// Not part of the chassis' API: how the server starts the span of a unit of work, used for a caller's own "request".
import { SpanKind, startWork } from '../../packages/chassis/src/trace/spans.ts';

export const BENCH_TOKEN = 'bench-token-0123456789';

/** Loopback, a port of the OS's choosing, production's log level (the per-request line is debug: filtered, its check paid). */
const BASE_ENV = { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', SERVICE_TOKEN: BENCH_TOKEN } as const;

export interface Started {
  url: string;
  stop(): Promise<void>;
}

/** What a wired (startService) process switches on; every switch is the chassis' own. Off unless given. */
export interface WiredOptions {
  /** The chassis resilience pipeline on the caller's dependency (defaults), or `resilience: false`. */
  resilience?: boolean;
  /** Load shedding (LOAD_SHED_ENABLED). */
  protection?: boolean;
  /** Per-request and per-call metrics (METRICS_ENABLED; process metrics are always collected). */
  metrics?: boolean;
  /** OpenTelemetry spans, 100 % sampled (parent-based, always on), kept in the in-memory ring (OTEL_SDK_DISABLED). */
  tracing?: boolean;
}

/**
 * Every chassis caller's attempt timeout and the deadline of each of its calls: the chassis default, 5 s.
 * instructions.ts raises it (BENCH_CALL_TIMEOUT_MS) for the processes of a count, where the side under callgrind can
 * take longer than 5 s to answer 64 calls in flight.
 */
const CALL_TIMEOUT_MS = Number(process.env.BENCH_CALL_TIMEOUT_MS ?? 5_000);

/** The env of a wired process. Fault injection stays off (its default); rate limits exist only where a service sets them. */
export const wiredEnv = (o: WiredOptions): Record<string, string> => ({
  ...BASE_ENV,
  RESILIENCE_ATTEMPT_TIMEOUT_MS: String(CALL_TIMEOUT_MS),
  // Set by instructions.ts for a server under callgrind, whose event loop lags for as long as it is counted.
  ...(process.env.LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS ? { LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: process.env.LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS } : {}),
  LOAD_SHED_ENABLED: String(o.protection === true),
  METRICS_ENABLED: String(o.metrics === true),
  OTEL_SDK_DISABLED: String(o.tracing !== true),
  OTEL_TRACES_SAMPLER: 'parentbased_always_on',
  // Unset: the chassis default (trace/config.ts); set it to try another size (the ring's size decides how much the GC
  // has to keep).
  ...(process.env.TRACE_RING_SPANS ? { TRACE_RING_SPANS: process.env.TRACE_RING_SPANS } : {}),
});

/** A server started by startService, as a bank service is (`env`: more of its settings, e.g. SOCKET_PATH). */
export async function startWiredServer<C extends Contract, S extends ZodRawShape, Deps extends Record<string, Contract>>(
  service: ServiceDefinition<C, S, Deps>,
  o: WiredOptions,
  env: Record<string, string> = {},
): Promise<Started> {
  const running = await startService(service, { ...wiredEnv(o), ...env });
  return { url: running.url, stop: running.stop };
}

export interface Caller<C extends Contract> {
  client: Client<C>;
  /** The caller's tracer when tracing is on: each caller loop's unit of work gets a recorded span from it. */
  tracer: Tracer | undefined;
  stop(): Promise<void>;
}

const callerContract = defineContract({ service: 'bench-caller', routes: {} });

/**
 * A calling service started by startService with `contract` as its one dependency: its client is the one the chassis
 * wires (`ctx.clients.target`: the dependency's resilience pipeline unless `resilience: false`, the client metrics
 * policies when metrics are on, client spans when tracing is). It serves no route of its own; its server listens, idle.
 */
export async function wiredCaller<C extends Contract>(contract: C, url: string, o: WiredOptions): Promise<Caller<C>> {
  const service = defineService({
    contract: callerContract,
    defaultPort: 0,
    dependencies: { target: contract },
    ...(o.resilience ? {} : { resilience: false as const }),
    setup: () => ({ routes: {} }),
  });
  const running = await startService(service, { ...wiredEnv(o), [urlEnvName(contract.service)]: url });
  return { client: running.context.clients.target as Client<C>, tracer: running.tracing?.tracer, stop: running.stop };
}

/** How a caller's calls run: bare (no work context), or inside one as a handler's outgoing calls are. */
export type WorkMode = 'none' | 'deadline' | 'traced';

/**
 * Runs each call of caller loop `n` as a request handler's outgoing call runs:
 * - `none`: outside any work context (a script; no AsyncLocalStorage in the process);
 * - `deadline`: inside the loop's unit of work (its request id and trace ids travel) with a fresh 5 s deadline per
 *   call (sent as x-deadline-ms; the retry and bulkhead policies read it);
 * - `traced`: the same, the unit of work having a recorded span (from `tracer`), so each call gets a client span and
 *   the callee, seeing a sampled traceparent, a server span.
 */
export function workRunner(mode: WorkMode, loops: number, tracer: Tracer | undefined): <T>(n: number, fn: () => Promise<T>) => Promise<T> {
  if (mode === 'none') return (_n, fn) => fn();
  if (mode === 'traced' && !tracer) throw new Error('traced calls need a caller with tracing on');
  const work: WorkContext[] = Array.from({ length: loops }, () =>
    mode === 'traced' ? startWork(tracer!, 'GET /bench/caller', SpanKind.SERVER, undefined, undefined, undefined, undefined) : contextFrom({}),
  );
  return (n, fn) => runWithContext({ ...work[n]!, deadline: Date.now() + CALL_TIMEOUT_MS }, fn);
}
