import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultDataDir } from '../datadir.ts';
import { LEVELS, followLogs, logDir, parseTime, readLogs, type LevelName, type LogEntry, type LogFilter } from '../log-files.ts';
import { createFormatter } from '../logs.ts';
import { PROCESS_NAMES } from '../services.ts';

export const LOGS_HELP = 'show the services\' logs kept by `up`, filtered: logs [service…] [--trace id] [--level warn] [--since 10m] [-f]  (logs --help)';

export const LOGS_USAGE = `usage: simplebank logs [service…] [options]

Reads what the services of \`simplebank up\` (npm start) wrote, kept as JSON lines in <data dir>/logs/<service>.log
(rotated), merged in time order and printed like \`npm start\` prints them.

  service…          only these services (default: all): ${PROCESS_NAMES.join(', ')}
  --trace <id>      only lines of this trace (traceId): one order's story across every service
  --request <id>    only lines of this request (requestId)
  --level <level>   at least this level: trace, debug, info, warn, error, fatal
  --since <when>    not before: 30s, 10m, 2h, 1d ago, or an ISO time (2026-01-02T03:04:05Z)
  --until <when>    not after (same forms)
  --grep <text>     only lines containing this text (an order id, a customer id, a word of the message)
  -n, --tail <n>    only the last n matching lines
  -f, --follow      keep printing new lines as they are written, until Ctrl-C
  --json            print the stored JSON lines as they are (for jq)
  --data-dir <dir>  the bank's data folder (default: SIMPLEBANK_DATA_DIR or .simplebank)
`;

export interface LogsCommand {
  dir: string;
  filter: LogFilter;
  tail: number | undefined;
  follow: boolean;
  json: boolean;
}

export class LogsUsageError extends Error {
  override name = 'LogsUsageError';
}

/** `logs` arguments → what to read and how to print it; throws LogsUsageError saying what is wrong. */
export function parseLogsArgs(args: string[], env: Record<string, string | undefined> = process.env, now = Date.now()): LogsCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        trace: { type: 'string' },
        request: { type: 'string' },
        level: { type: 'string' },
        since: { type: 'string' },
        until: { type: 'string' },
        grep: { type: 'string' },
        tail: { type: 'string', short: 'n' },
        follow: { type: 'boolean', short: 'f' },
        json: { type: 'boolean' },
        'data-dir': { type: 'string' },
      },
    });
  } catch (err) {
    throw new LogsUsageError((err as Error).message);
  }
  const { values: v, positionals } = parsed;
  const unknown = positionals.filter((s) => !PROCESS_NAMES.includes(s));
  if (unknown.length > 0) throw new LogsUsageError(`unknown service ${unknown.join(', ')} (known: ${PROCESS_NAMES.join(', ')})`);
  const filter: LogFilter = {};
  if (positionals.length > 0) filter.services = [...new Set(positionals)];
  if (v.trace !== undefined) filter.traceId = v.trace;
  if (v.request !== undefined) filter.requestId = v.request;
  if (v.grep !== undefined) filter.text = v.grep;
  if (v.level !== undefined) {
    if (!(v.level in LEVELS)) throw new LogsUsageError(`--level must be one of ${Object.keys(LEVELS).join(', ')} (got "${v.level}")`);
    filter.minLevel = LEVELS[v.level as LevelName];
  }
  for (const key of ['since', 'until'] as const) {
    const raw = v[key];
    if (raw === undefined) continue;
    const t = parseTime(raw, now);
    if (t === undefined) throw new LogsUsageError(`--${key} must be a duration (30s, 10m, 2h, 1d) or an ISO time (got "${raw}")`);
    filter[key] = t;
  }
  let tail: number | undefined;
  if (v.tail !== undefined) {
    tail = Number(v.tail);
    if (!Number.isInteger(tail) || tail < 0) throw new LogsUsageError(`--tail must be a whole number (got "${v.tail}")`);
  }
  const dataDir = path.resolve(v['data-dir'] ?? env.SIMPLEBANK_DATA_DIR ?? defaultDataDir());
  return { dir: logDir(dataDir), filter, tail, follow: v.follow === true, json: v.json === true };
}

export interface LogsIo {
  write: (text: string) => void;
  error: (text: string) => void;
  colour: boolean;
  /** Ends --follow (Ctrl-C). */
  signal?: AbortSignal;
}

export async function logs(args: string[], io: LogsIo = defaultIo()): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    io.write(LOGS_USAGE);
    return 0;
  }
  let command: LogsCommand;
  try {
    command = parseLogsArgs(args);
  } catch (err) {
    if (!(err instanceof LogsUsageError)) throw err;
    io.error(`simplebank logs: ${err.message}\n\n${LOGS_USAGE}`);
    return 2;
  }
  return runLogs(command, io);
}

export async function runLogs(command: LogsCommand, io: LogsIo): Promise<number> {
  if (!existsSync(command.dir)) {
    io.error(`simplebank logs: no logs in ${command.dir} yet: they are written while \`npm start\` (simplebank up) runs\n`);
    return 1;
  }
  const format = createFormatter({ names: PROCESS_NAMES, colour: io.colour, json: command.json });
  const print = (e: LogEntry) => io.write(`${format(e.service, 'stdout', e.line)}\n`);
  let entries = await readLogs(command.dir, command.filter);
  if (command.tail !== undefined) entries = command.tail === 0 ? [] : entries.slice(-command.tail);
  entries.forEach(print);
  if (command.follow) {
    const controller = new AbortController();
    const stop = () => controller.abort();
    io.signal?.addEventListener('abort', stop, { once: true });
    const signals = io.signal ? [] : (['SIGINT', 'SIGTERM'] as const);
    for (const s of signals) process.once(s, stop);
    try {
      // --until does not apply to lines not written yet; every other filter does.
      await followLogs(command.dir, { ...command.filter, until: undefined }, print, controller.signal);
    } finally {
      for (const s of signals) process.off(s, stop);
    }
  }
  return 0;
}

function defaultIo(): LogsIo {
  return {
    write: (text) => process.stdout.write(text),
    error: (text) => process.stderr.write(text),
    colour: process.stdout.isTTY === true && !process.env.NO_COLOR,
  };
}
