// The stacks bench/rpc compares, and the budgets it judges (issues 2, 3 and 4). Shared by run.ts, server.ts and load.ts.
import type { WiredOptions, WorkMode } from '../lib/chassis.ts';

/** Server processes: plain fastify, or the echo service started by startService with some of its switches on. */
export type ServerKind = 'bare' | 'core' | 'metrics' | 'observed' | 'all';
/** Caller kinds: an undici Pool, or a startService caller (its wired client) with some of its switches on. */
export type ClientKind = 'undici' | 'core' | 'pipeline' | 'pipeline+metrics' | 'metrics' | 'observed' | 'all';

/** What each wired server and caller switches on; everything else is off (`core`: every switch off). */
export const WIRED: Record<Exclude<ServerKind | ClientKind, 'bare' | 'undici'>, WiredOptions> = {
  core: {},
  pipeline: { resilience: true },
  'pipeline+metrics': { resilience: true, metrics: true },
  metrics: { metrics: true },
  observed: { metrics: true, tracing: true },
  all: { resilience: true, protection: true, metrics: true, tracing: true },
};

export interface StackDef {
  server: ServerKind;
  client: ClientKind;
  work: WorkMode;
  what: string;
}

export const STACKS = {
  bare: { server: 'bare', client: 'undici', work: 'none', what: 'undici Pool (`pool.request` + `body.json()`) against plain fastify, same route and pool size' },
  chassis: {
    server: 'core',
    client: 'core',
    work: 'none',
    what: 'the chassis core: startService on both sides with `resilience: false`, LOAD_SHED_ENABLED, METRICS_ENABLED false, OTEL_SDK_DISABLED true; calls outside any work context',
  },
  'chassis+ctx': {
    server: 'core',
    client: 'core',
    work: 'deadline',
    what: "the core, each call inside a unit of work with a 5 s deadline, as a handler's outgoing call is (request id, traceparent, x-deadline-ms travel; AsyncLocalStorage live in the caller)",
  },
  'chassis+pipeline': {
    server: 'core',
    client: 'pipeline',
    work: 'deadline',
    what: "the caller with the chassis' own pipeline on its dependency (defaults: bulkhead, retry + budget, breaker; attempt timeout) and calls inside a unit of work with a deadline; metrics, tracing, shedding off; core server",
  },
  'chassis+pipeline+metrics': {
    server: 'core',
    client: 'pipeline+metrics',
    work: 'deadline',
    what: "chassis+pipeline with the caller's dependency metrics on: issue 3's list word for word",
  },
  'chassis+metrics': {
    server: 'metrics',
    client: 'metrics',
    work: 'deadline',
    what: 'chassis+ctx with METRICS_ENABLED on both sides (server hooks, client policies)',
  },
  'chassis+observability': {
    server: 'observed',
    client: 'observed',
    work: 'traced',
    what: 'chassis+ctx with metrics and tracing on both sides (100 % sampled, in-memory ring); the unit of work has a recorded span, so every call has a client span and a server span',
  },
  'chassis+all': {
    server: 'all',
    client: 'all',
    work: 'traced',
    what: 'startService defaults on both sides: pipeline, load shedding, metrics, tracing 100 % — what a bank service runs',
  },
} as const satisfies Record<string, StackDef>;

export type Stack = keyof typeof STACKS;
export const isStack = (v: string | undefined): v is Stack => v !== undefined && Object.hasOwn(STACKS, v);

/** The stacks a run measures unless --stacks says otherwise. */
export const DEFAULT_STACKS: Stack[] = ['bare', 'chassis', 'chassis+ctx', 'chassis+pipeline', 'chassis+observability'];

export interface Budget {
  issue: number;
  stack: Stack;
  reference: Stack;
  /** Lowest acceptable stack / reference throughput. */
  min: number;
  what: string;
}

export const BUDGETS: Budget[] = [
  { issue: 2, stack: 'chassis', reference: 'bare', min: 0.85, what: 'the chassis keeps ≥ 85 % of bare fastify + undici' },
  {
    issue: 3,
    stack: 'chassis+pipeline',
    reference: 'chassis',
    min: 0.9,
    what: 'the full client pipeline (deadline, timeout, retry, breaker, bulkhead) costs ≤ 10 % vs the bare chassis client',
  },
  { issue: 4, stack: 'chassis+observability', reference: 'chassis+ctx', min: 0.85, what: 'metrics + tracing (100 %, in-memory exporter) cost ≤ 15 % vs the same with them off' },
];

/** Further ratios printed for attribution, not judged. */
export const INFO: [Stack, Stack, string][] = [
  ['chassis+ctx', 'chassis', 'the unit of work and deadline alone'],
  ['chassis+pipeline', 'chassis+ctx', 'the pipeline policies alone, in a process that has the work context anyway'],
  ['chassis+pipeline+metrics', 'chassis', "issue 3's list word for word (pipeline + the caller's metrics)"],
  ['chassis+metrics', 'chassis+ctx', 'metrics alone'],
  ['chassis+observability', 'chassis+metrics', 'tracing alone'],
  ['chassis+observability', 'chassis', 'observability and the unit of work'],
  ['chassis+all', 'chassis', 'everything a bank service runs, vs the core'],
  ['chassis+all', 'bare', 'everything a bank service runs, vs bare'],
];
