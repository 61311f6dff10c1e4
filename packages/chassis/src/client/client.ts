import { Pool } from 'undici';
import type { CallInput, CallOutput, Contract, RouteDef } from '../contract/define.ts';
import type { Problem } from '../errors/problem.ts';
import { currentContext, outgoingTraceparent } from '../trace/context.ts';
import { HEADERS } from '../http/headers.ts';
import { UpstreamError } from './errors.ts';

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

export interface ClientOptions {
  baseUrl: string;
  /** Service credential sent on every call (service-only routes require it). */
  serviceToken?: string;
  /** Per-attempt timeout in ms (default 5000); also capped by the caller's remaining deadline. */
  timeoutMs?: number;
  /** Keep-alive connections to this dependency (default 32). */
  connections?: number;
  policies?: ClientPolicy[];
}

export type Client<C extends Contract> = {
  [K in keyof C['routes']]: (input: CallInput<C['routes'][K]>) => Promise<CallOutput<C['routes'][K]>>;
} & { close(): Promise<void> };

function buildPath(path: string, params: Record<string, unknown> | undefined, query: Record<string, unknown> | undefined): string {
  const filled = path.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => {
    const v = params?.[name];
    if (v === undefined) throw new Error(`missing path parameter ${name}`);
    return encodeURIComponent(String(v));
  });
  if (!query) return filled;
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.append(k, String(v));
  const s = qs.toString();
  return s ? `${filled}?${s}` : filled;
}

function isIdempotent(def: RouteDef, headers: Record<string, string>): boolean {
  if (def.idempotent !== undefined) return def.idempotent || Boolean(headers[HEADERS.idempotencyKey]);
  return def.method !== 'POST' && def.method !== 'PATCH' ? true : Boolean(headers[HEADERS.idempotencyKey]);
}

/**
 * A typed client for another service, generated from its contract: one async function per route, over an
 * undici keep-alive pool. Request id, trace context and the remaining deadline travel with every call.
 */
export function createClient<C extends Contract>(contract: C, options: ClientOptions): Client<C> {
  const pool = new Pool(options.baseUrl, { connections: options.connections ?? 32, pipelining: 1 });
  const defaultTimeout = options.timeoutMs ?? 5_000;
  const policies = options.policies ?? [];
  const client: Record<string, unknown> = {
    close: () => pool.close(),
  };

  for (const [operation, def] of Object.entries(contract.routes) as [string, RouteDef][]) {
    client[operation] = async (input: CallInput<RouteDef> = {} as CallInput<RouteDef>) => {
      const ctx = currentContext();
      const headers: Record<string, string> = { ...((input.headers as Record<string, string> | undefined) ?? {}) };
      if (ctx) headers[HEADERS.requestId] = ctx.requestId;
      const traceparent = outgoingTraceparent(ctx);
      if (traceparent) headers[HEADERS.traceparent] = traceparent;
      if (ctx?.tracestate) headers[HEADERS.tracestate] = ctx.tracestate;
      if (options.serviceToken) headers[HEADERS.serviceToken] = options.serviceToken;
      const path = buildPath(def.path, input.params as unknown as Record<string, unknown> | undefined, input.query as unknown as Record<string, unknown> | undefined);
      let body: string | undefined;
      if (def.body) {
        body = JSON.stringify(input.body);
        headers['content-type'] = 'application/json';
      }
      const call: CallInfo = { service: contract.service, operation, method: def.method, retryable: isIdempotent(def, headers) };

      const attempt = async (signal: AbortSignal): Promise<CallOutput<RouteDef>> => {
        const deadline = ctx?.deadline;
        const remaining = deadline !== undefined ? deadline - Date.now() : Infinity;
        if (remaining <= 0) throw new UpstreamError({ kind: 'timeout', service: call.service, operation, message: `deadline exceeded before calling ${call.service}.${operation}` });
        const timeout = Math.min(input.timeoutMs ?? defaultTimeout, remaining);
        if (deadline !== undefined) headers[HEADERS.deadline] = String(Math.max(0, Math.floor(remaining)));
        const timeoutSignal = AbortSignal.timeout(timeout);
        const combined = AbortSignal.any([signal, timeoutSignal, ...(input.signal ? [input.signal] : [])]);
        let res;
        try {
          res = await pool.request({ method: def.method, path, headers, ...(body !== undefined ? { body } : {}), signal: combined });
        } catch (err) {
          const timedOut = timeoutSignal.aborted;
          throw new UpstreamError({
            kind: timedOut ? 'timeout' : 'connection',
            service: call.service,
            operation,
            message: timedOut ? `${call.service}.${operation} timed out after ${timeout} ms` : `${call.service}.${operation} failed: ${(err as Error).message}`,
            cause: err,
          });
        }
        const text = await res.body.text();
        const schema = def.responses[res.statusCode];
        if (!schema) {
          let problem: Problem | undefined;
          try {
            problem = JSON.parse(text) as Problem;
          } catch {
            problem = undefined;
          }
          throw new UpstreamError({
            kind: 'http',
            service: call.service,
            operation,
            status: res.statusCode,
            ...(problem ? { problem } : {}),
            message: `${call.service}.${operation} answered ${res.statusCode}${problem?.detail ? `: ${problem.detail}` : ''}`,
          });
        }
        let parsed: unknown;
        try {
          parsed = schema.parse(text.length ? JSON.parse(text) : undefined);
        } catch (err) {
          throw new UpstreamError({ kind: 'invalid_response', service: call.service, operation, status: res.statusCode, message: `${call.service}.${operation} sent a response that breaks its contract`, cause: err });
        }
        return { status: res.statusCode, body: parsed, headers: res.headers } as CallOutput<RouteDef>;
      };

      const controller = new AbortController();
      const run = policies.reduceRight<(signal: AbortSignal) => Promise<CallOutput<RouteDef>>>(
        (next, policy) => (signal) => policy.execute(next, call, signal),
        attempt,
      );
      return run(controller.signal);
    };
  }
  return client as Client<C>;
}
