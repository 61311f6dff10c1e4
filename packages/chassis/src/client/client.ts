import { setMaxListeners } from 'node:events';
import type { Span } from '@opentelemetry/api';
import { Pool, type Dispatcher } from 'undici';
import type { CallInput, CallOutput, Contract, RouteDef } from '../contract/define.ts';
import type { Problem } from '../errors/problem.ts';
import { currentContext, outgoingTraceparent } from '../trace/context.ts';
import { HEADERS } from '../http/headers.ts';
import { socketPathOf } from '../http/socket.ts';
import { ClientCallSpan } from '../trace/http-client.ts';
import { detachedTraceparent } from '../trace/spans.ts';
import { parseRetryAfter, UpstreamError } from './errors.ts';

/** What a policy sees of one call. */
export interface CallInfo {
  service: string;
  operation: string;
  method: string;
  /** Safe to repeat (idempotent route, or a POST carrying an idempotency key). */
  retryable: boolean;
}

/**
 * A client policy wraps the attempt function; policies compose outermost-first, like cockatiel's `wrap`.
 * Resilience (retry, breaker, bulkhead, …) and instrumentation plug in here.
 */
export interface ClientPolicy {
  execute<T>(attempt: (signal: AbortSignal) => Promise<T>, call: CallInfo, signal: AbortSignal): Promise<T>;
}

/**
 * Watches calls, or attempts, without wrapping them: told when one starts, and once how it ended. Goes in
 * `ClientOptions.policies` like a policy, and its place there says what it sees: before every policy, each logical
 * call (retries, backoff and queueing included); after every policy, each attempt the policies let out. There the
 * client tells it from the one promise reaction it has anyway (the call's outcome, or the attempt's response), so
 * it costs no promise of its own; between two policies it is wrapped as one (observerPolicy). Metrics plug in here.
 */
export interface ClientObserver<S = unknown> {
  /** A call (or attempt) starts; what this returns is handed back to `settled`. */
  start(call: CallInfo): S;
  /** It ended: `failed` with `error`, or not (a declared success response). Called once. */
  settled(call: CallInfo, state: S, failed: boolean, error: unknown): void;
}

const isPolicy = (p: ClientPolicy | ClientObserver): p is ClientPolicy => typeof (p as Partial<ClientPolicy>).execute === 'function';

/** An observer as a policy: for one between two policies, which sees what the policies inside it let through. */
export function observerPolicy(observer: ClientObserver): ClientPolicy {
  return {
    execute<T>(attempt: (signal: AbortSignal) => Promise<T>, call: CallInfo, signal: AbortSignal): Promise<T> {
      const state = observer.start(call);
      return attempt(signal).then(
        (value) => {
          observer.settled(call, state, false, undefined);
          return value;
        },
        (err: unknown) => {
          observer.settled(call, state, true, err);
          throw err;
        },
      );
    },
  };
}

export interface ClientOptions {
  baseUrl: string;
  /** Service credential sent on every call (service-only routes require it). */
  serviceToken?: string;
  /** Per-attempt timeout in ms (default 5000); also capped by the caller's remaining deadline. */
  timeoutMs?: number;
  /** Keep-alive connections to this dependency (default 32). */
  connections?: number;
  /** Policies and observers, outermost first (see ClientObserver for where an observer sees what). */
  policies?: readonly (ClientPolicy | ClientObserver)[];
}

export type Client<C extends Contract> = {
  [K in keyof C['routes']]: (input: CallInput<C['routes'][K]>) => Promise<CallOutput<C['routes'][K]>>;
} & { close(): Promise<void> };

/**
 * The signal a call starts with (the policies get it, and pass it or a child of their own on to the attempt): nobody
 * can abort it, so nobody needs to listen to it. One shared signal instead of a new AbortController per call, whose
 * construction and the attempt's `abort` listener on it cost ~50 k instructions per call on Node 20 (bench/rpc).
 * Listeners that policies add to it (a queued bulkhead waiter, a retry's backoff) are removed when their call
 * settles; with many calls in flight there are many at once, which is no leak, hence no listener limit.
 */
const NEVER_ABORTED = new AbortController().signal;
setMaxListeners(0, NEVER_ABORTED);

/**
 * A route's path template split once into literal pieces and parameter names, so a call only concatenates
 * (a regex replace with a callback per call cost ~2 µs, measurable against a ~40 µs call).
 */
function compilePath(path: string): (params: Record<string, unknown> | undefined) => string {
  const parts = path.split(/:([A-Za-z0-9_]+)/g); // literal, name, literal, name, …, literal
  if (parts.length === 1) return () => path;
  return (params) => {
    let out = parts[0]!;
    for (let i = 1; i < parts.length; i += 2) {
      const name = parts[i]!;
      const v = params?.[name];
      if (v === undefined) throw new Error(`missing path parameter ${name}`);
      out += encodeURIComponent(String(v)) + parts[i + 1]!;
    }
    return out;
  };
}

function withQuery(path: string, query: Record<string, unknown> | undefined): string {
  if (!query) return path;
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.append(k, String(v));
  const s = qs.toString();
  return s ? `${path}?${s}` : path;
}

function isIdempotent(def: RouteDef, headers: Record<string, string>): boolean {
  if (def.idempotent !== undefined) return def.idempotent || Boolean(headers[HEADERS.idempotencyKey]);
  return def.method !== 'POST' && def.method !== 'PATCH' ? true : Boolean(headers[HEADERS.idempotencyKey]);
}

/**
 * The observers and span of one call (or one attempt), told once how it ended: from the one promise reaction the
 * call (the attempt) has, not from promise wrappers of their own, each of which pays the async hooks on Node 20.
 */
class Watch {
  constructor(
    readonly call: CallInfo,
    readonly observers: readonly ClientObserver[],
    readonly states: unknown[] | undefined,
    readonly callSpan: ClientCallSpan | undefined,
    /** The span to end: the call's, or a retry's. */
    readonly span: Span | undefined,
  ) {}

  ok(out: CallOutput<RouteDef>): void {
    this.settle(out.status, false, undefined);
  }

  fail(err: unknown): void {
    this.settle(undefined, true, err);
  }

  private settle(status: number | undefined, failed: boolean, err: unknown): void {
    const { call, observers, states } = this;
    for (let i = 0; i < observers.length; i++) observers[i]!.settled(call, states![i], failed, err);
    if (this.span) this.callSpan!.end(this.span, status, failed, err);
  }
}

const NO_OBSERVERS: readonly ClientObserver[] = Object.freeze([]);

/** Starts the observers (and takes the span) of a call or an attempt; undefined when there is nothing to tell. */
function watch(call: CallInfo | undefined, observers: readonly ClientObserver[], callSpan: ClientCallSpan | undefined, span: Span | undefined): Watch | undefined {
  if (observers.length === 0) return span ? new Watch(call!, NO_OBSERVERS, undefined, callSpan, span) : undefined;
  const states = new Array<unknown>(observers.length);
  for (let i = 0; i < observers.length; i++) states[i] = observers[i]!.start(call!);
  return new Watch(call!, observers, states, callSpan, span);
}

/** What createClient works out once per route, so a call does only the per-call part. */
interface RouteCall {
  service: string;
  operation: string;
  def: RouteDef;
  fillPath: (params: Record<string, unknown> | undefined) => string;
  /** Turns a finished exchange into the typed result (or the UpstreamError), without a closure per call. */
  finish: (exchange: Exchange) => CallOutput<RouteDef>;
}

/** One call's request, worked out once and shared by its attempts. */
interface Outgoing {
  pool: Pool;
  route: RouteCall;
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
  deadline: number | undefined;
  input: CallInput<RouteDef>;
  defaultTimeout: number;
  callSpan: ClientCallSpan | undefined;
  /** Set when there are policies or observers. */
  call: CallInfo | undefined;
  /** Observers of each attempt (after every policy). */
  attemptObservers: readonly ClientObserver[];
}

const transportError = (route: RouteCall, err: unknown): UpstreamError =>
  new UpstreamError({
    kind: 'connection',
    service: route.service,
    operation: route.operation,
    message: `${route.service}.${route.operation} failed: ${(err as Error | undefined)?.message}`,
    cause: err,
  });

/**
 * A call the caller aborted rejects with the same error wherever the abort found it: on the wire (the attempt turns
 * the reason into this transport error), or before (queued in the bulkhead, in a retry's backoff), where the policy
 * rejects with the bare reason.
 */
function rethrowCallerAbort(route: RouteCall, signal: AbortSignal, err: unknown): never {
  throw signal.aborted && err === signal.reason ? transportError(route, err) : err;
}

/**
 * One attempt on the wire: the undici dispatch handler, the attempt's timer and its outcome in one object.
 *
 * It talks to undici's `dispatch` directly instead of `pool.request()`: that would wrap every response in a
 * Readable stream (plus an AsyncResource, abort listeners and a consumer for `.text()`), which costs more CPU
 * than everything the chassis adds to a call, for a body the chassis reads whole anyway. Aborting needs no
 * AbortSignal either (an EventTarget listener per call was ~20 µs on Node 20): undici hands the handler a
 * controller. Measured in bench/rpc (docs/benchmarks.md).
 */
const NO_HEADERS: Record<string, string | string[] | undefined> = Object.freeze({});

class Exchange implements Dispatcher.DispatchHandler {
  statusCode = 0;
  headers = NO_HEADERS;
  /** Set once the attempt has an outcome; later callbacks from undici are ignored. */
  settled = false;
  /** Why the attempt failed, when it did before a response was read (the outcome promise resolves either way). */
  failure: UpstreamError | undefined = undefined;
  /** Told how the attempt ended, from the same reaction that reads the response. */
  watch: Watch | undefined = undefined;
  private first: Buffer | undefined = undefined;
  private rest: Buffer[] | undefined = undefined;
  private controller: Dispatcher.DispatchController | undefined = undefined;
  /** Why the attempt was abandoned before undici started it (it is aborted as soon as it does). */
  private abortReason: Error | undefined = undefined;
  timer: NodeJS.Timeout | undefined = undefined;
  /** Caller and policy signals this attempt listens to, and its listener (only when there are any). */
  upstream: AbortSignal[] | undefined = undefined;
  forward: ((event: Event) => void) | undefined = undefined;
  resolve!: (exchange: Exchange) => void;

  constructor(
    readonly route: RouteCall,
    readonly timeoutMs: number,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.abortReason) controller.abort(this.abortReason);
    else this.controller = controller;
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return; // 1xx informational: the real response follows
    this.statusCode = statusCode;
    this.headers = headers;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.first === undefined) this.first = chunk;
    else (this.rest ??= [this.first]).push(chunk);
  }

  onResponseEnd(): void {
    if (this.settled) return;
    this.settle();
    this.resolve(this);
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.settled) return;
    this.settle();
    this.failure = transportError(this.route, err);
    this.resolve(this);
  }

  /** Ends the attempt now with `error`; the request, if undici has it, is aborted with `reason`. */
  abandon(error: UpstreamError, reason: Error): void {
    if (this.settled) return;
    this.settle();
    this.failure = error;
    this.resolve(this);
    if (this.controller) this.controller.abort(reason);
    else this.abortReason = reason;
  }

  /** The body as text, as undici's `body.text()` decodes it (UTF-8, a leading BOM skipped). */
  text(): string {
    const buf = this.rest ? Buffer.concat(this.rest) : this.first;
    if (!buf) return '';
    const start = buf.length > 2 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
    return buf.toString('utf8', start);
  }

  private settle(): void {
    this.settled = true;
    clearTimeout(this.timer);
    if (this.forward) for (const s of this.upstream!) s.removeEventListener('abort', this.forward);
  }
}

function onAttemptTimeout(exchange: Exchange): void {
  const { route, timeoutMs } = exchange;
  const message = `${route.service}.${route.operation} timed out after ${timeoutMs} ms`;
  const reason = new DOMException(message, 'TimeoutError');
  exchange.abandon(new UpstreamError({ kind: 'timeout', service: route.service, operation: route.operation, message, cause: reason }), reason);
}

function retryAfterOf(headers: Record<string, string | string[] | undefined>): number | undefined {
  const value = headers['retry-after'];
  return parseRetryAfter(Array.isArray(value) ? value[0] : value);
}

/**
 * The reaction to an attempt's outcome (one per attempt): the result, or its error, told to the attempt's watch
 * (its observers, a retry's span; with no policies, the whole call's) before the caller hears of it.
 */
function finishAttempt(route: RouteCall, exchange: Exchange): CallOutput<RouteDef> {
  const { watch } = exchange;
  if (exchange.failure) {
    watch?.fail(exchange.failure);
    throw exchange.failure;
  }
  if (!watch) return finishCall(route, exchange);
  let out: CallOutput<RouteDef>;
  try {
    out = finishCall(route, exchange);
  } catch (err) {
    watch.fail(err);
    throw err;
  }
  watch.ok(out);
  return out;
}

/** Reads a finished exchange: the declared success status parsed with its schema, anything else an UpstreamError. */
function finishCall(route: RouteCall, exchange: Exchange): CallOutput<RouteDef> {
  const { service, operation, def } = route;
  const status = exchange.statusCode;
  const text = exchange.text();
  const schema = def.responses[status];
  if (!schema) {
    let problem: Problem | undefined;
    try {
      problem = JSON.parse(text) as Problem;
    } catch {
      problem = undefined;
    }
    // "Not now, try again in …": the retry policy waits at least this long, or gives up when it is too long.
    const retryAfterMs = status === 429 || status === 503 ? retryAfterOf(exchange.headers) : undefined;
    throw new UpstreamError({
      kind: 'http',
      service,
      operation,
      status,
      ...(problem ? { problem } : {}),
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      message: `${service}.${operation} answered ${status}${problem?.detail ? `: ${problem.detail}` : ''}`,
    });
  }
  let parsed: unknown;
  try {
    parsed = schema.parse(text.length ? JSON.parse(text) : undefined);
  } catch (err) {
    throw new UpstreamError({ kind: 'invalid_response', service, operation, status, message: `${service}.${operation} sent a response that breaks its contract`, cause: err });
  }
  return { status, body: parsed, headers: exchange.headers } as CallOutput<RouteDef>;
}

/**
 * One attempt: the caller's deadline caps the timeout (and travels as the remaining budget), then the request
 * goes out on the pool. Never throws: every failure is a rejected promise, as policies expect. `callWatch`: the
 * whole call's, when there are no policies (the call is this one attempt); else the attempt gets its own.
 */
function attempt(o: Outgoing, signal: AbortSignal, callWatch: Watch | undefined): Promise<CallOutput<RouteDef>> {
  const { route, headers, deadline, input, callSpan } = o;
  let attemptWatch = callWatch;
  try {
    // A retry gets a span of its own, and its traceparent in the headers.
    const retrySpan = callSpan?.attempt(headers, HEADERS.traceparent);
    if (callWatch === undefined) attemptWatch = watch(o.call, o.attemptObservers, callSpan, retrySpan);
    const remaining = deadline !== undefined ? deadline - Date.now() : Infinity;
    if (remaining <= 0) {
      throw new UpstreamError({ kind: 'timeout', service: route.service, operation: route.operation, message: `deadline exceeded before calling ${route.service}.${route.operation}` });
    }
    if (deadline !== undefined) headers[HEADERS.deadline] = String(Math.max(0, Math.floor(remaining)));
    const exchange = new Exchange(route, Math.min(input.timeoutMs ?? o.defaultTimeout, remaining));
    const outcome = new Promise<Exchange>((resolve) => {
      exchange.resolve = resolve;
    });
    // Reading the body is inside the timeout too: a server stalling mid-body is a timeout, not a hang.
    exchange.timer = setTimeout(onAttemptTimeout, exchange.timeoutMs, exchange);
    // The caller's and the policies' signals are listened to only when they can actually abort.
    if (signal !== NEVER_ABORTED || input.signal) {
      // The policies pass the caller's signal (or one of their own, derived from it) on: listen to it once.
      const upstream = signal === NEVER_ABORTED ? [input.signal!] : input.signal && input.signal !== signal ? [signal, input.signal] : [signal];
      const forward = (event: Event) => {
        const reason = (event.target as AbortSignal).reason as Error;
        exchange.abandon(transportError(route, reason), reason);
      };
      exchange.upstream = upstream;
      exchange.forward = forward;
      for (const s of upstream) {
        if (s.aborted) exchange.abandon(transportError(route, s.reason), s.reason as Error);
        else s.addEventListener('abort', forward, { once: true });
      }
    }
    if (!exchange.settled) {
      try {
        o.pool.dispatch({ method: route.def.method, path: o.path, headers, body: o.body ?? null }, exchange);
      } catch (err) {
        exchange.onResponseError(undefined, err as Error);
      }
    }
    // Last: from here on, the reaction tells the watch (nothing below can throw).
    exchange.watch = attemptWatch;
    attemptWatch = undefined;
    return outcome.then(route.finish);
  } catch (err) {
    attemptWatch?.fail(err);
    return Promise.reject(err);
  }
}

/**
 * A typed client for another service, generated from its contract: one async function per route, over an
 * undici keep-alive pool. Request id, trace context and the remaining deadline travel with every call.
 */
export function createClient<C extends Contract>(contract: C, options: ClientOptions): Client<C> {
  const socketPath = socketPathOf(options.baseUrl);
  const poolOptions = { connections: options.connections ?? 32, pipelining: 1 };
  // A `unix:<path>` base URL: the service's SOCKET_PATH on this machine (http/socket.ts), with `localhost` as Host.
  const pool = socketPath ? new Pool('http://localhost', { ...poolOptions, socketPath }) : new Pool(options.baseUrl, poolOptions);
  const defaultTimeout = options.timeoutMs ?? 5_000;
  // Observers before the first policy see each call, those after the last one each attempt (ClientObserver).
  const listed = options.policies ?? [];
  const first = listed.findIndex(isPolicy);
  const last = listed.findLastIndex(isPolicy);
  const callObservers = (first < 0 ? listed : listed.slice(0, first)) as ClientObserver[];
  const attemptObservers = (first < 0 ? [] : listed.slice(last + 1)) as ClientObserver[];
  const policies = first < 0 ? [] : listed.slice(first, last + 1).map((p) => (isPolicy(p) ? p : observerPolicy(p)));
  const needsCallInfo = listed.length > 0;
  const serviceToken = options.serviceToken;
  const client: Record<string, unknown> = {
    close: () => pool.close(),
  };

  for (const [operation, def] of Object.entries(contract.routes) as [string, RouteDef][]) {
    const route: RouteCall = { service: contract.service, operation, def, fillPath: compilePath(def.path), finish: (exchange) => finishAttempt(route, exchange) };
    const hasBody = def.body !== undefined;
    client[operation] = (input: CallInput<RouteDef> = {} as CallInput<RouteDef>): Promise<CallOutput<RouteDef>> => {
      try {
        const ctx = currentContext();
        const given = input.headers as Record<string, string> | undefined;
        const headers: Record<string, string> = given ? { ...given } : {};
        // A client span when the caller's work is traced; its context is what the callee continues.
        const callSpan = ClientCallSpan.start(ctx, route);
        if (ctx) {
          headers[HEADERS.requestId] = ctx.requestId;
          headers[HEADERS.traceparent] = callSpan ? callSpan.traceparent : outgoingTraceparent(ctx)!;
          if (ctx.tracestate) headers[HEADERS.tracestate] = ctx.tracestate;
        } else headers[HEADERS.traceparent] = detachedTraceparent();
        if (serviceToken) headers[HEADERS.serviceToken] = serviceToken;
        const path = withQuery(route.fillPath(input.params as unknown as Record<string, unknown> | undefined), input.query as unknown as Record<string, unknown> | undefined);
        let body: string | undefined;
        if (hasBody) {
          body = JSON.stringify(input.body);
          headers['content-type'] = 'application/json';
        }
        const call: CallInfo | undefined = needsCallInfo ? { service: contract.service, operation, method: def.method, retryable: isIdempotent(def, headers) } : undefined;
        const o: Outgoing = { pool, route, path, headers, body, deadline: ctx?.deadline, input, defaultTimeout, callSpan, call, attemptObservers };
        // The call's observers and span, told from one reaction: the attempt's own when there are no policies.
        const callWatch = watch(call, callObservers, callSpan, callSpan?.span);
        if (policies.length === 0) return attempt(o, NEVER_ABORTED, callWatch);

        const run = policies.reduceRight<(signal: AbortSignal) => Promise<CallOutput<RouteDef>>>(
          (next, policy) => (signal) => policy.execute(next, call!, signal),
          (signal) => attempt(o, signal, undefined),
        );
        // The policies get the caller's signal: an abort leaves the bulkhead's queue and a retry's backoff at once, is
        // not retried, and is neutral to the breaker (a caller giving up says nothing about the dependency).
        const callerSignal = input.signal;
        const result = callerSignal ? run(callerSignal).catch((err: unknown) => rethrowCallerAbort(o.route, callerSignal, err)) : run(NEVER_ABORTED);
        if (!callWatch) return result;
        return result.then(
          (out) => {
            callWatch.ok(out);
            return out;
          },
          (err: unknown) => {
            callWatch.fail(err);
            throw err;
          },
        );
      } catch (err) {
        return Promise.reject(err);
      }
    };
  }
  return client as Client<C>;
}
