import type { z } from 'zod';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * One HTTP operation of a service: everything a server needs to validate it and a client needs to call it.
 * `responses` lists the success statuses and their bodies; errors are always problem+json.
 */
export interface RouteDef {
  method: HttpMethod;
  /** fastify-style path, e.g. `/accounts/:id`. */
  path: string;
  summary?: string;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** Request headers the route reads (lower-case names), validated like the rest of the input. */
  headers?: z.ZodType;
  responses: Record<number, z.ZodType>;
  /** `service`: only callers presenting the service credential. Default `none`. */
  auth?: 'none' | 'service';
  /**
   * Safe to repeat. Defaults to true for GET, PUT and DELETE; a POST is retried by clients only when this is
   * true or the call carries an `idempotency-key` header.
   */
  idempotent?: boolean;
}

export interface EventDef<S extends z.ZodType = z.ZodType> {
  /** Versioned event type, `<service>.<Name>.v<major>`. */
  type: string;
  data: S;
}

export interface Contract<R extends Record<string, RouteDef> = Record<string, RouteDef>, E extends Record<string, EventDef> = Record<string, EventDef>> {
  service: string;
  version: string;
  routes: R;
  events: E;
}

/** Identity functions that keep literal types, so handlers and clients are typed from the contract. */
export function defineContract<const R extends Record<string, RouteDef>, const E extends Record<string, EventDef> = Record<never, EventDef>>(
  contract: { service: string; version?: string; routes: R; events?: E },
): Contract<R, E> {
  return { service: contract.service, version: contract.version ?? '1.0.0', routes: contract.routes, events: (contract.events ?? {}) as E };
}

export const route = <const D extends RouteDef>(def: D): D => def;

export const event = <S extends z.ZodType>(type: string, data: S): EventDef<S> => ({ type, data });

type Infer<T> = T extends z.ZodType ? z.infer<T> : undefined;
type InferIn<T> = T extends z.ZodType ? z.input<T> : undefined;

/** What a handler receives: validated (parsed) input. */
export interface RouteInput<D extends RouteDef> {
  params: Infer<D['params']>;
  query: Infer<D['query']>;
  body: Infer<D['body']>;
  headers: Infer<D['headers']>;
}

/** What a handler returns: one of the declared statuses with its body. */
export type RouteOutput<D extends RouteDef> = {
  [S in keyof D['responses'] & number]: { status: S; body: z.input<D['responses'][S]>; headers?: Record<string, string> };
}[keyof D['responses'] & number];

/** What a client call sends (schema inputs, before defaults/coercion). */
export type CallInput<D extends RouteDef> = (D['params'] extends z.ZodType ? { params: InferIn<D['params']> } : { params?: undefined }) &
  (D['query'] extends z.ZodType ? { query: InferIn<D['query']> } : { query?: undefined }) &
  (D['body'] extends z.ZodType ? { body: InferIn<D['body']> } : { body?: undefined }) &
  (D['headers'] extends z.ZodType ? { headers: InferIn<D['headers']> } : { headers?: Record<string, string> }) & {
    /** Per-call options: timeout override, abort signal. */
    signal?: AbortSignal;
    timeoutMs?: number;
  };

/** What a client call resolves to: the declared success responses, parsed. */
export type CallOutput<D extends RouteDef> = {
  [S in keyof D['responses'] & number]: { status: S; body: z.infer<D['responses'][S]>; headers: Record<string, string | string[] | undefined> };
}[keyof D['responses'] & number];

export type Handlers<C extends Contract> = {
  [K in keyof C['routes']]: (input: RouteInput<C['routes'][K]>, request: RequestInfo) => Promise<RouteOutput<C['routes'][K]>>;
};

/** Facts about the incoming request a handler may need beyond its validated input. */
export interface RequestInfo {
  requestId: string;
  /** Absolute deadline (epoch ms) propagated by the caller, if any. */
  deadline?: number;
  /** Raw header lookup (lower-case name). */
  header(name: string): string | undefined;
  ip: string;
}

export type EventData<E extends EventDef> = z.infer<E['data']>;

/**
 * Types a service's handlers against its contract. Use it where handlers are written inline: inside a generic
 * call (`defineService`) TypeScript can't yet see the contract while typing them, and would widen `status: 200`
 * to `number`.
 */
export const implement = <C extends Contract>(_contract: C, handlers: Handlers<NoInfer<C>>): Handlers<C> => handlers;
