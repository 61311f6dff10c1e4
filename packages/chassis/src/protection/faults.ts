import { z } from 'zod';

/** Where a fault applies: requests this service receives, or calls it makes to a dependency. */
export type FaultTarget =
  /** `route`: `METHOD /path/template` as the service declares it (e.g. `GET /prices/:symbol`), or `*`. */
  | { direction: 'incoming'; route: string }
  /** `operation`: the dependency contract's route name (e.g. `getPrice`); omitted = every call. */
  | { direction: 'outgoing'; dependency: string; operation?: string };

export interface FaultSpec {
  target: FaultTarget;
  /** Added before the request is handled / the call is made. */
  latencyMs?: number;
  /** Share of requests (0..1) that fail: incoming with 503 `injected_fault`, outgoing with a connection error. */
  errorRate?: number;
  /** Never answer (incoming) / never complete until the attempt's timeout or deadline (outgoing). */
  hang?: boolean;
  /** The fault removes itself after this. Default 300 s. */
  durationSeconds?: number;
}

export interface Fault {
  id: string;
  target: FaultTarget;
  latencyMs?: number;
  errorRate?: number;
  hang?: boolean;
  createdAt: number;
  expiresAt: number;
  /** Counter: requests (incoming) or attempts (outgoing) this fault was applied to, failed or not. */
  applied: number;
  /** Counter: of those, the ones it failed. */
  failed: number;
}

/** What to do to one request or call, drawn from a fault (the error roll is made once, here). */
export interface FaultAction {
  fault: Fault;
  latencyMs: number;
  hang: boolean;
  error: boolean;
}

export const FAULT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ROUTE_PATTERN = /^(\*|(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) \/\S*)$/;

/**
 * 5 minutes unless told otherwise: long enough for a demo or a chaos test, short enough that a forgotten fault
 * does not outlive the experiment. At most a day.
 */
export const FAULT_DEFAULTS = Object.freeze({ durationSeconds: 300, maxDurationSeconds: 86_400, maxLatencyMs: 600_000 });

/** The body of `PUT /admin/faults/:id`, and what `FaultRegistry.set` accepts. */
export const faultSpecSchema = z
  .object({
    target: z.discriminatedUnion('direction', [
      z.object({
        direction: z.literal('incoming'),
        route: z
          .string()
          .transform((r) => r.trim().replace(/^([a-z]+) /i, (m) => m.toUpperCase()))
          .pipe(z.string().regex(ROUTE_PATTERN, 'must be "*" or "METHOD /path/template", e.g. "GET /prices/:symbol"'))
          .default('*'),
      }).strict(),
      z.object({
        direction: z.literal('outgoing'),
        dependency: z.string().min(1).max(100),
        operation: z.string().min(1).max(100).optional(),
      }).strict(),
    ]),
    latencyMs: z.number().int().min(0).max(FAULT_DEFAULTS.maxLatencyMs).optional(),
    errorRate: z.number().min(0).max(1).optional(),
    hang: z.boolean().optional(),
    durationSeconds: z.number().positive().max(FAULT_DEFAULTS.maxDurationSeconds).optional(),
  })
  .strict()
  .refine((f) => (f.latencyMs ?? 0) > 0 || (f.errorRate ?? 0) > 0 || f.hang === true, { message: 'a fault needs latencyMs > 0, errorRate > 0 or hang: true' });

export interface FaultRegistryOptions {
  /** Off unless the service's config says so (`FAULTS_ENABLED=true`): then `set` throws and nothing matches. */
  enabled: boolean;
  random?: () => number;
  now?: () => number;
}

export interface FaultRegistry {
  readonly enabled: boolean;
  size(): number;
  /** Adds or replaces fault `id`; throws a RangeError when disabled or invalid. */
  set(id: string, spec: FaultSpec): Fault;
  get(id: string): Fault | undefined;
  list(): Fault[];
  delete(id: string): boolean;
  /** Removes every fault; returns how many there were. */
  clear(): number;
  /** The action for a request on `routeKey` (`METHOD /template`); `infra` routes are skipped by `*` faults. */
  incoming(routeKey: string, infra?: boolean): FaultAction | undefined;
  /** The action for a call to `dependency`'s `operation`. */
  outgoing(dependency: string, operation: string): FaultAction | undefined;
  /** Whether this very fault is still registered (not removed, replaced or expired). */
  isActive(fault: Fault): boolean;
  /** Called with every fault that is removed, replaced or expires; returns the unsubscriber. */
  onRemoved(listener: (fault: Fault) => void): () => void;
  /** Removes every fault (releasing whatever waits on them) and stops the expiry timers. */
  close(): void;
}

/**
 * The process's injected faults. Few and short-lived, so matching scans them; with none (the normal case) every
 * lookup is one size check.
 */
export function createFaultRegistry(options: FaultRegistryOptions): FaultRegistry {
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  // Insertion order = recency: `set` re-inserts, so among equally specific faults the newest wins.
  const faults = new Map<string, { fault: Fault; timer: NodeJS.Timeout }>();
  const listeners = new Set<(fault: Fault) => void>();

  const remove = (id: string): boolean => {
    const entry = faults.get(id);
    if (!entry) return false;
    clearTimeout(entry.timer);
    faults.delete(id);
    for (const l of listeners) l(entry.fault);
    return true;
  };

  const act = (fault: Fault): FaultAction => {
    const error = (fault.errorRate ?? 0) > 0 && random() < fault.errorRate!;
    fault.applied++;
    if (error) fault.failed++;
    return { fault, latencyMs: fault.latencyMs ?? 0, hang: fault.hang === true, error };
  };

  /** The most specific live fault (score > 0), the newest among equals. */
  const best = (score: (f: Fault) => number): FaultAction | undefined => {
    if (faults.size === 0) return undefined;
    const t = now();
    let found: Fault | undefined;
    let top = 0;
    for (const { fault } of faults.values()) {
      const s = fault.expiresAt > t ? score(fault) : 0;
      if (s > 0 && s >= top) {
        found = fault;
        top = s;
      }
    }
    return found && act(found);
  };

  return {
    enabled: options.enabled,
    size: () => faults.size,
    set(id, spec) {
      if (!options.enabled) throw new RangeError('fault injection is disabled (FAULTS_ENABLED is not true)');
      if (!FAULT_ID_PATTERN.test(id)) throw new RangeError(`invalid fault id "${id}"`);
      const parsed = faultSpecSchema.safeParse(spec);
      if (!parsed.success) throw new RangeError(`invalid fault ${id}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'fault'}: ${i.message}`).join('; ')}`);
      const s = parsed.data;
      const createdAt = now();
      const durationMs = (s.durationSeconds ?? FAULT_DEFAULTS.durationSeconds) * 1000;
      const fault: Fault = {
        id,
        target: s.target,
        ...(s.latencyMs ? { latencyMs: s.latencyMs } : {}),
        ...(s.errorRate ? { errorRate: s.errorRate } : {}),
        ...(s.hang ? { hang: true } : {}),
        createdAt,
        expiresAt: createdAt + durationMs,
        applied: 0,
        failed: 0,
      };
      remove(id);
      // unref'd: a pending expiry must not keep a stopping process alive; close() clears them anyway.
      const timer = setTimeout(() => {
        if (faults.get(id)?.fault === fault) remove(id);
      }, durationMs);
      timer.unref();
      faults.set(id, { fault, timer });
      return fault;
    },
    get: (id) => faults.get(id)?.fault,
    list: () => [...faults.values()].map((e) => e.fault).filter((f) => f.expiresAt > now()),
    delete: remove,
    clear() {
      const n = faults.size;
      for (const id of [...faults.keys()]) remove(id);
      return n;
    },
    incoming: (routeKey, infra = false) =>
      best((f) => (f.target.direction !== 'incoming' ? 0 : f.target.route === routeKey ? 2 : f.target.route === '*' && !infra ? 1 : 0)),
    outgoing: (dependency, operation) =>
      best((f) => (f.target.direction !== 'outgoing' || f.target.dependency !== dependency ? 0 : f.target.operation === undefined ? 1 : f.target.operation === operation ? 2 : 0)),
    isActive: (fault) => faults.get(fault.id)?.fault === fault && fault.expiresAt > now(),
    onRemoved(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      for (const id of [...faults.keys()]) remove(id);
      listeners.clear();
    },
  };
}

/** A fault as the admin API shows it: times as ISO strings, plus the seconds left. */
export function describeFault(fault: Fault, now: number = Date.now()): Record<string, unknown> {
  return {
    id: fault.id,
    target: fault.target,
    ...(fault.latencyMs !== undefined ? { latencyMs: fault.latencyMs } : {}),
    ...(fault.errorRate !== undefined ? { errorRate: fault.errorRate } : {}),
    ...(fault.hang ? { hang: true } : {}),
    createdAt: new Date(fault.createdAt).toISOString(),
    expiresAt: new Date(fault.expiresAt).toISOString(),
    remainingSeconds: Math.max(0, Math.ceil((fault.expiresAt - now) / 1000)),
    applied: fault.applied,
    failed: fault.failed,
  };
}
