import { adminRequest, describeProblem, numberOption, parseCommandArgs, prepareAdminCommand, processIo, UsageError, type AdminAnswer, type AdminIo } from './admin-request.ts';

export const DLQ_HELP = "list and replay a service's dead-lettered events: dlq <service> [replay <subscription> <id> | replay-all <subscription>]  (dlq --help)";

export const DLQ_USAGE = `usage:
  simplebank dlq <service> [--subscription <name>] [--limit 100] [--json]   list its dead letters, oldest first
  simplebank dlq <service> replay <subscription> <id>                         move one back to its subscription
  simplebank dlq <service> replay-all <subscription>                          move all of the subscription's back

  --subscription  only this subscription's dead letters (default: all of the service's subscriptions)
  --limit         at most this many (1..1000, default 100)
  --json          the dead letters with their whole events, as JSON

A replayed event is delivered again with its attempts counted from 1; handlers are idempotent (inbox), and a dead
letter is replayed once, so repeating a replay never delivers twice. Fix the cause first: an event that fails again
is dead-lettered again (replay-all replays each event once per run).
Routes: GET /admin/dead-letters, POST /admin/dead-letters/:subscription/:id/replay (service credential).
URL: <SERVICE>_URL or the default port. Credential: SERVICE_TOKEN or <data dir>/service-token.
`;

export type DlqCommand =
  | { action: 'list'; service: string; subscription?: string; limit?: number; json: boolean }
  | { action: 'replay'; service: string; subscription: string; id: string }
  | { action: 'replay-all'; service: string; subscription: string };

/** A dead letter as the service's admin route shows it (chassis messaging/admin.ts). */
export interface ShownDeadLetter {
  id: string;
  subscription: string;
  eventId: string;
  type: string;
  subject: string;
  deadLetteredAt: string;
  attempts?: number;
  error: string;
  event: unknown;
}

/** `dlq` arguments (after the command name) → what to do; throws a UsageError saying what is wrong. */
export function parseDlqArgs(args: string[]): DlqCommand {
  const { values: v, positionals } = parseCommandArgs(args, { subscription: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } });
  const [service, action = 'list', ...rest] = positionals;
  if (!service) throw new UsageError('which service? e.g. simplebank dlq orders');
  if (action === 'list') {
    if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(' ')}`);
    const limit = numberOption('limit', v.limit, (n) => Number.isInteger(n) && n >= 1 && n <= 1000, 'a whole number from 1 to 1000');
    if (v.subscription !== undefined && v.subscription.trim() === '') throw new UsageError('--subscription needs a name');
    return { action, service, ...(v.subscription !== undefined ? { subscription: v.subscription } : {}), ...(limit !== undefined ? { limit } : {}), json: v.json === true };
  }
  if (action !== 'replay' && action !== 'replay-all') throw new UsageError(`unknown action "${action}" (list, replay or replay-all)`);
  const stray = (['subscription', 'limit', 'json'] as const).find((o) => v[o] !== undefined);
  if (stray) throw new UsageError(`--${stray} only goes with listing`);
  const [subscription, id, ...extra] = rest;
  if (!subscription) throw new UsageError(`${action} needs a subscription, e.g. simplebank dlq ${service} ${action} orders.saga-market${action === 'replay' ? ' <id>' : ''}`);
  if (action === 'replay-all') {
    if (id !== undefined) throw new UsageError(`unexpected arguments: ${[id, ...extra].join(' ')} (replay-all takes a subscription only)`);
    return { action, service, subscription };
  }
  if (!id) throw new UsageError(`replay needs the dead letter's id (simplebank dlq ${service} lists them)`);
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  return { action, service, subscription, id };
}

/** One line per dead letter: when, subscription, id, event type, id and subject, attempts, last error. */
export function formatDeadLetter(l: ShownDeadLetter): string {
  const attempts = l.attempts === undefined ? '' : `  ${l.attempts} attempt${l.attempts === 1 ? '' : 's'}`;
  return `${l.deadLetteredAt}  ${l.subscription}  ${l.id}  ${l.type}  event ${l.eventId}  subject ${l.subject}${attempts}  ${l.error ? `error: ${l.error}` : ''}`.trimEnd();
}

export type DlqIo = AdminIo;

/** Dead letters of one page fetched by replay-all. */
const PAGE = 100;

/** `simplebank dlq <service> [list] | replay | replay-all`: 0 done, 1 refused, not found or unreachable, 2 bad usage. */
export async function dlq(args: string[], io: DlqIo = processIo): Promise<number> {
  const prepared = await prepareAdminCommand('dlq', DLQ_USAGE, args, parseDlqArgs, io);
  if (typeof prepared === 'number') return prepared;
  const { command, base, token } = prepared;
  const { service } = command;
  const doFetch = io.fetch ?? fetch;
  const path = `${base}/admin/dead-letters`;

  /** The answer when it is a success (or `tolerated`), else undefined once the failure has been reported. */
  const call = async (url: string, method = 'GET', tolerated?: (a: AdminAnswer) => boolean): Promise<AdminAnswer | undefined> => {
    let answer: AdminAnswer;
    try {
      answer = await adminRequest(doFetch, url, token, { method });
    } catch (err) {
      io.err(`simplebank dlq: ${service} is not reachable at ${base} (${(err as Error).message})\n`);
      return undefined;
    }
    if ((answer.status >= 200 && answer.status <= 299) || tolerated?.(answer)) return answer;
    if (answer.status === 401) io.err(`simplebank dlq: ${service} refused the service credential (check SERVICE_TOKEN)\n`);
    else if (answer.status === 404 && answer.body.code === 'route_not_found') io.err(`simplebank dlq: ${service} has no event bus, so no dead letters\n`);
    else io.err(`simplebank dlq: ${describeProblem(service, answer)}\n`);
    return undefined;
  };
  const list = async (query: URLSearchParams): Promise<ShownDeadLetter[] | undefined> => {
    const answer = await call(`${path}?${query.toString()}`);
    return answer && ((answer.body.deadLetters as ShownDeadLetter[] | undefined) ?? []);
  };
  const replayUrl = (subscription: string, id: string) => `${path}/${encodeURIComponent(subscription)}/${encodeURIComponent(id)}/replay`;

  if (command.action === 'list') {
    const query = new URLSearchParams();
    if (command.subscription !== undefined) query.set('subscription', command.subscription);
    if (command.limit !== undefined) query.set('limit', String(command.limit));
    const letters = await list(query);
    if (!letters) return 1;
    if (command.json) io.out(`${JSON.stringify(letters, null, 2)}\n`);
    else if (letters.length === 0) io.out(`${service}: no dead letters${command.subscription ? ` in ${command.subscription}` : ''}\n`);
    else io.out(letters.map((l) => `${formatDeadLetter(l)}\n`).join(''));
    return 0;
  }

  if (command.action === 'replay') {
    if (!(await call(replayUrl(command.subscription, command.id), 'POST'))) return 1;
    io.out(`${service}: dead letter ${command.id} replayed to ${command.subscription}\n`);
    return 0;
  }

  // replay-all: page through the subscription's dead letters, oldest first, replaying each event once. An event
  // that fails again comes back as a new dead letter (a new id, at the end): it is not replayed again in this run,
  // so the loop ends even while the cause is still there.
  const seen = new Set<string>();
  let replayed = 0;
  let gone = 0;
  for (;;) {
    const letters = await list(new URLSearchParams({ subscription: command.subscription, limit: String(PAGE) }));
    if (!letters) return 1;
    const fresh = letters.filter((l) => !seen.has(l.eventId));
    if (fresh.length === 0) break;
    for (const l of fresh) {
      seen.add(l.eventId);
      // Not found: replayed meanwhile by someone else, nothing left to do.
      const answer = await call(replayUrl(command.subscription, l.id), 'POST', (a) => a.status === 404 && a.body.code === 'dead_letter_not_found');
      if (!answer) {
        io.err(`simplebank dlq: stopped; ${replayed} dead letter(s) replayed before\n`);
        return 1;
      }
      if (answer.status === 202) replayed++;
      else gone++;
    }
  }
  io.out(`${service}: ${replayed} dead letter(s) of ${command.subscription} replayed${gone ? ` (${gone} replayed by someone else meanwhile)` : ''}\n`);
  return 0;
}
