import { z } from 'zod';

/** Config every service reads from its environment. Each key documents itself. */
const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

/** An on/off env setting: true/false, 1/0, yes/no, on/off (any case); anything else stops start-up naming it. */
export const envFlag = (fallback: boolean, description: string) =>
  z
    .string()
    .trim()
    .toLowerCase()
    .refine((v) => TRUE.has(v) || FALSE.has(v), 'must be true or false')
    .transform((v) => TRUE.has(v))
    .default(fallback)
    .describe(description);

export const baseConfigShape = {
  PORT: z.coerce.number().int().min(0).max(65535).describe('TCP port to listen on (0 = any free port)'),
  HOST: z.string().default('127.0.0.1').describe('interface to bind'),
  SOCKET_PATH: z
    .string()
    .optional()
    .describe('also serve on this Unix domain socket, for callers on the same machine (their <SERVICE>_URL=unix:<path>): cheaper per call than TCP loopback'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('pino log level'),
  SERVICE_INSTANCE: z.string().optional().describe('instance id in logs and metrics (default: pid)'),
  SERVICE_TOKEN: z.string().min(16).describe('shared service credential for service-only routes; never logged'),
  DATABASE_URL: z.string().url().optional().describe('the service\'s own PostgreSQL database'),
  BUS_URL: z.string().url().optional().describe('event bus: postgres://… (pg-boss) or nats://… (JetStream)'),
  SERVICE_ROLE: z
    .enum(['all', 'api', 'worker'])
    .default('all')
    .describe(
      'the work this instance takes: all; api (requests only: no event deliveries, outbox relay or background work, which another instance does); worker (deliveries, relay and background work; only the chassis\' own routes: health, metrics, admin)',
    ),
  DB_POOL_MAX: z.coerce.number().int().min(1).max(500).default(10).describe('connections in the service\'s database pool'),
  METRICS_ENABLED: envFlag(true, 'record per-request and per-call metrics (HTTP server, dependencies); messaging, business and process metrics are always kept'),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().positive().default(10_000).describe('time allowed to drain on SIGTERM'),
};

export type BaseConfig = z.infer<z.ZodObject<typeof baseConfigShape>>;

export class ConfigError extends Error {
  constructor(service: string, issues: string[]) {
    super(`invalid configuration for ${service}:\n  ${issues.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Validates env once at start-up and freezes the result; a bad value stops the process
 * with a message naming every offending variable.
 */
export function loadConfig<S extends z.ZodRawShape>(service: string, shape: S, env: Record<string, string | undefined>): Readonly<z.infer<z.ZodObject<S>>> {
  const parsed = z.object(shape).safeParse(env);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => {
      const key = i.path.join('.');
      const description = (shape[key] as z.ZodType | undefined)?.description;
      return `${key}: ${i.message}${description ? ` (${description})` : ''}`;
    });
    throw new ConfigError(service, issues);
  }
  return Object.freeze(parsed.data) as Readonly<z.infer<z.ZodObject<S>>>;
}
