import { HOST } from '../services.ts';
import { adminRequest, describeProblem, numberOption, parseCommandArgs, prepareAdminCommand, processIo, UsageError, type AdminAnswer, type AdminIo } from './admin-request.ts';

// Found here first; other commands import them from admin-request.ts.
export { resolveServiceToken, serviceUrl, UsageError } from './admin-request.ts';

export const FAULT_HELP = 'inject latency, errors or hangs into a running service: fault <service> set|list|clear  (fault --help)';

export const FAULT_USAGE = `usage:
  simplebank fault <service> set <id> [--route 'GET /prices/:symbol' | --dependency market-data [--operation getPrice]]
                                      [--latency 500] [--error-rate 0.5] [--hang] [--duration 30]
  simplebank fault <service> list [--json]
  simplebank fault <service> clear [id]

  --route        incoming requests on this route ('METHOD /path/template' as declared, or '*'; the default)
  --dependency   outgoing calls to this dependency instead (--operation: only this contract route)
  --latency      ms added before handling / calling
  --error-rate   share of requests failing: 503 injected_fault incoming, a connection error outgoing
  --hang         never answer (incoming) / time out (outgoing) until cleared
  --duration     seconds until the fault clears itself (the service's default is 300)

The service must run with FAULTS_ENABLED=true. URL: <SERVICE>_URL or the default port on ${HOST}.
Credential: SERVICE_TOKEN or <data dir>/service-token (data dir: SIMPLEBANK_DATA_DIR or .simplebank).
`;

export interface FaultBody {
  target: { direction: 'incoming'; route: string } | { direction: 'outgoing'; dependency: string; operation?: string };
  latencyMs?: number;
  errorRate?: number;
  hang?: boolean;
  durationSeconds?: number;
}

export type FaultCommand =
  | { action: 'set'; service: string; id: string; body: FaultBody }
  | { action: 'list'; service: string; json: boolean }
  | { action: 'clear'; service: string; id?: string };

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ROUTE = /^(\*|[A-Za-z]+ \/\S*)$/;

/** `fault` arguments (after the command name) → what to do; throws a UsageError saying what is wrong. */
export function parseFaultArgs(args: string[]): FaultCommand {
  const { values: v, positionals } = parseCommandArgs(args, {
    route: { type: 'string' },
    dependency: { type: 'string' },
    operation: { type: 'string' },
    latency: { type: 'string' },
    'error-rate': { type: 'string' },
    hang: { type: 'boolean' },
    duration: { type: 'string' },
    json: { type: 'boolean' },
  });
  const [service, action, id, ...extra] = positionals;
  if (!service) throw new UsageError('which service? e.g. simplebank fault market-data list');
  if (!action) throw new UsageError(`what to do with ${service}'s faults: set, list or clear`);
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  const setOnly = ['route', 'dependency', 'operation', 'latency', 'error-rate', 'hang', 'duration'] as const;

  if (action === 'list' || action === 'clear') {
    const stray = setOnly.filter((o) => v[o] !== undefined);
    if (stray.length > 0) throw new UsageError(`--${stray[0]} only goes with set`);
    if (action === 'list') {
      if (id !== undefined) throw new UsageError('list takes no id');
      return { action, service, json: v.json === true };
    }
    if (v.json) throw new UsageError('--json only goes with list');
    if (id !== undefined && !ID.test(id)) throw new UsageError(`invalid fault id "${id}"`);
    return { action, service, ...(id !== undefined ? { id } : {}) };
  }
  if (action !== 'set') throw new UsageError(`unknown action "${action}" (set, list or clear)`);
  if (!id) throw new UsageError('set needs a fault id, e.g. simplebank fault market-data set slow --latency 500');
  if (!ID.test(id)) throw new UsageError(`invalid fault id "${id}": letters, digits, ".", "_" or "-", at most 64`);
  if (v.json) throw new UsageError('--json only goes with list');
  if (v.route !== undefined && v.dependency !== undefined) throw new UsageError('--route (incoming) and --dependency (outgoing) exclude each other');
  if (v.operation !== undefined && v.dependency === undefined) throw new UsageError('--operation needs --dependency');
  if (v.route !== undefined && !ROUTE.test(v.route.trim())) throw new UsageError(`--route must be '*' or 'METHOD /path/template', e.g. 'GET /prices/:symbol' (got "${v.route}")`);

  const latencyMs = numberOption('latency', v.latency, (n) => Number.isInteger(n) && n >= 0 && n <= 600_000, 'whole milliseconds, 0..600000');
  const errorRate = numberOption('error-rate', v['error-rate'], (n) => n >= 0 && n <= 1, 'between 0 and 1');
  const durationSeconds = numberOption('duration', v.duration, (n) => n > 0 && n <= 86_400, 'seconds, > 0 and ≤ 86400');
  if (!(latencyMs ?? 0) && !(errorRate ?? 0) && !v.hang) throw new UsageError('a fault needs --latency, --error-rate or --hang');

  const target: FaultBody['target'] =
    v.dependency !== undefined
      ? { direction: 'outgoing', dependency: v.dependency, ...(v.operation !== undefined ? { operation: v.operation } : {}) }
      : { direction: 'incoming', route: (v.route ?? '*').trim().replace(/^[a-z]+/i, (m) => m.toUpperCase()) };
  const body: FaultBody = {
    target,
    ...(latencyMs !== undefined ? { latencyMs } : {}),
    ...(errorRate !== undefined ? { errorRate } : {}),
    ...(v.hang ? { hang: true } : {}),
    ...(durationSeconds !== undefined ? { durationSeconds } : {}),
  };
  return { action: 'set', service, id, body };
}

export type FaultIo = AdminIo;

interface ShownFault {
  id: string;
  target: FaultBody['target'];
  latencyMs?: number;
  errorRate?: number;
  hang?: boolean;
  remainingSeconds?: number;
  /** Requests (incoming) or attempts (outgoing) the fault applied to so far, and how many of them it failed. */
  applied?: number;
  failed?: number;
}

/** One line per fault: id, target, effect, time left, and what it has done so far. */
export function formatFault(f: ShownFault): string {
  const target = f.target.direction === 'incoming' ? `incoming ${f.target.route}` : `outgoing ${f.target.dependency}${f.target.operation ? `.${f.target.operation}` : ''}`;
  const effects = [f.hang ? 'hang' : '', f.latencyMs ? `+${f.latencyMs} ms` : '', f.errorRate ? `${Math.round(f.errorRate * 1000) / 10}% errors` : ''].filter(Boolean).join(', ');
  const seen = f.applied ? `  [${f.applied} ${f.target.direction === 'incoming' ? 'requests' : 'calls'}, ${f.failed ?? 0} failed]` : '';
  return `${f.id}  ${target}  ${effects}${f.remainingSeconds !== undefined ? `  (clears in ${f.remainingSeconds} s)` : ''}${seen}`;
}

/** `simplebank fault <service> set|list|clear …`: 0 done, 1 the service refused or is unreachable, 2 bad usage. */
export async function fault(args: string[], io: FaultIo = processIo): Promise<number> {
  const prepared = await prepareAdminCommand('fault', FAULT_USAGE, args, parseFaultArgs, io);
  if (typeof prepared === 'number') return prepared;
  const { command, base, token } = prepared;

  const doFetch = io.fetch ?? fetch;
  const { service } = command;
  const url = `${base}/admin/faults${command.action === 'set' || (command.action === 'clear' && command.id) ? `/${encodeURIComponent((command as { id: string }).id)}` : ''}`;
  const method = command.action === 'set' ? 'PUT' : command.action === 'list' ? 'GET' : 'DELETE';
  let answer: AdminAnswer;
  try {
    answer = await adminRequest(doFetch, url, token, { method, ...(command.action === 'set' ? { json: command.body } : {}) });
  } catch (err) {
    io.err(`simplebank fault: ${service} is not reachable at ${base} (${(err as Error).message})\n`);
    return 1;
  }
  const { status, body } = answer;

  if (status < 200 || status > 299) {
    const code = typeof body.code === 'string' ? body.code : undefined;
    if (status === 404 && code !== 'fault_not_found') io.err(`simplebank fault: fault injection is disabled on ${service} (start it with FAULTS_ENABLED=true)\n`);
    else if (status === 401) io.err(`simplebank fault: ${service} refused the service credential (check SERVICE_TOKEN)\n`);
    else io.err(`simplebank fault: ${describeProblem(service, answer)}\n`);
    return 1;
  }

  if (command.action === 'set') io.out(`${service}: ${formatFault(body as unknown as ShownFault)}\n`);
  else if (command.action === 'list') {
    const faults = (body.faults as ShownFault[] | undefined) ?? [];
    if (command.json) io.out(`${JSON.stringify(faults, null, 2)}\n`);
    else if (faults.length === 0) io.out(`${service}: no faults\n`);
    else io.out(faults.map((f) => `${formatFault(f)}\n`).join(''));
  } else io.out(command.id ? `${service}: fault ${command.id} cleared\n` : `${service}: ${String(body.cleared ?? 0)} fault(s) cleared\n`);
  return 0;
}
