import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { defaultDataDir } from '../datadir.ts';
import { HOST, PROCESSES, PROCESS_NAMES } from '../services.ts';

// What the commands that call the services' admin routes (fault, trace, dlq) share: finding a service and the service
// credential, the call itself, and how a refusal is told.

export class UsageError extends Error {
  override name = 'UsageError';
}

/** A command's arguments as node:util's parseArgs reads them (strict, positionals allowed); what it rejects is a UsageError. */
export function parseCommandArgs<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, allowPositionals: true, strict: true, options });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A numeric option's value, or undefined when it was not given; a UsageError naming `--name` and `rule` otherwise. */
export function numberOption(name: string, raw: string | undefined, check: (n: number) => boolean, rule: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || !check(n)) throw new UsageError(`--${name} must be ${rule} (got "${raw}")`);
  return n;
}

/** The variable that overrides a process's URL: `MARKET_DATA_URL`, `ORDERS_WORKER_URL`. */
export function urlEnvOf(process: string): string {
  return `${process.replace(/[^A-Za-z0-9]+/g, '_').toUpperCase()}_URL`;
}

/** `<SERVICE>_URL` (e.g. MARKET_DATA_URL) if set, else the service's default port on localhost. */
export function serviceUrl(service: string, env: Record<string, string | undefined>): string {
  const envName = urlEnvOf(service);
  const fromEnv = env[envName]?.trim();
  if (fromEnv) return fromEnv.replace(/\/+$/, '');
  const known = PROCESSES.find((p) => p.name === service);
  if (!known) throw new UsageError(`unknown service "${service}" (known: ${PROCESS_NAMES.join(', ')}; or set ${envName})`);
  return `http://${HOST}:${known.port}`;
}

/** SERVICE_TOKEN, else the token `simplebank up` keeps in the data folder; never creates one. */
export async function resolveServiceToken(env: Record<string, string | undefined>): Promise<string> {
  const fromEnv = env.SERVICE_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  const file = path.join(path.resolve(env.SIMPLEBANK_DATA_DIR ?? defaultDataDir()), 'service-token');
  const token = await readFile(file, 'utf8').then((s) => s.trim(), () => '');
  if (!token) throw new Error(`no service credential: set SERVICE_TOKEN, or start the bank (simplebank up) so ${file} exists`);
  return token;
}

export interface AdminIo {
  env: Record<string, string | undefined>;
  out: (text: string) => void;
  err: (text: string) => void;
  fetch?: typeof fetch;
}

export const processIo: AdminIo = { env: process.env, out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

/**
 * What an admin command does first: `--help`, its arguments parsed, the service's URL and the credential found. Returns
 * the exit code instead when there is nothing more to do: 0 help shown, 2 bad usage (said, with the usage), 1 no
 * credential.
 */
export async function prepareAdminCommand<C extends { service: string }>(
  name: string,
  usage: string,
  args: string[],
  parse: (args: string[]) => C,
  io: AdminIo,
): Promise<{ command: C; base: string; token: string } | number> {
  if (args.length === 0 || args.some((a) => a === '--help' || a === '-h') || args[0] === 'help') {
    (args.length === 0 ? io.err : io.out)(usage);
    return args.length === 0 ? 2 : 0;
  }
  let command: C;
  let base: string;
  try {
    command = parse(args);
    base = serviceUrl(command.service, io.env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`simplebank ${name}: ${err.message}\n\n${usage}`);
    return 2;
  }
  try {
    return { command, base, token: await resolveServiceToken(io.env) };
  } catch (err) {
    io.err(`simplebank ${name}: ${(err as Error).message}\n`);
    return 1;
  }
}

/** A service's answer to an admin request: its status and its JSON body (`{}` when there is none or it is not JSON). */
export interface AdminAnswer {
  status: number;
  body: Record<string, unknown>;
}

/**
 * One request to a service's admin routes with the service credential, timed out after 5 s. Throws only when the
 * service cannot be reached (or does not answer in time); any answer, 4xx and 5xx included, is returned.
 */
export async function adminRequest(doFetch: typeof fetch, url: string, token: string, init: { method?: string; json?: unknown } = {}): Promise<AdminAnswer> {
  const res = await doFetch(url, {
    method: init.method ?? 'GET',
    headers: { 'x-service-token': token, ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
    signal: AbortSignal.timeout(5_000),
  });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = {};
  }
  return { status: res.status, body };
}

/** `<service> answered 400: <detail>` and, for a validation problem, one indented line per field. */
export function describeProblem(service: string, answer: AdminAnswer): string {
  const { status, body } = answer;
  const details = Array.isArray(body.errors) ? (body.errors as { field: string; message: string }[]).map((e) => `\n  ${e.field}: ${e.message}`).join('') : '';
  return `${service} answered ${status}${body.detail ? `: ${String(body.detail)}` : ''}${details}`;
}
