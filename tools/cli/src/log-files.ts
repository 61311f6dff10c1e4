import { createReadStream, createWriteStream, fstatSync, mkdirSync, openSync, renameSync, rmSync, type WriteStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';

/**
 * The services' logs kept on disk, so `simplebank logs` can read them after the fact: `<dataDir>/logs/<service>.log`,
 * one JSON object a line, exactly as the service wrote it to stdout. A line the service did not write as JSON (a
 * crash trace on stderr, the supervisor's own notes) is wrapped in one (`time`, `level`, `service`, `stream`, `msg`),
 * so every file stays JSON lines for `simplebank logs`, jq or a log shipper.
 *
 * Bounded: a file that would pass `maxBytes` is rotated (`x.log` → `x.log.1` → `x.log.2` …, `keep` old files), so a
 * service uses at most (keep + 1) × maxBytes.
 */

export const LOG_DIR = 'logs';
export const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;
export const DEFAULT_KEEP = 2;

export function logDir(dataDir: string): string {
  return path.join(dataDir, LOG_DIR);
}

export interface LogFilesOptions {
  dir: string;
  maxBytes?: number;
  keep?: number;
}

interface OpenFile {
  stream: WriteStream;
  bytes: number;
}

const NAME = /^[a-z0-9][a-z0-9-]*$/;

export class LogFiles {
  readonly dir: string;
  readonly #maxBytes: number;
  readonly #keep: number;
  readonly #files = new Map<string, OpenFile>();
  readonly #closing: Promise<void>[] = [];
  #closed = false;

  constructor(options: LogFilesOptions) {
    this.dir = options.dir;
    this.#maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.#keep = options.keep ?? DEFAULT_KEEP;
    if (!(this.#maxBytes > 0) || !(this.#keep >= 1)) throw new RangeError('maxBytes must be > 0 and keep >= 1');
  }

  /** Appends one line of a service's output (JSON as it is; anything else wrapped). Never throws. */
  write(service: string, stream: 'stdout' | 'stderr', line: string): void {
    if (this.#closed || !NAME.test(service)) return;
    const text = `${isJsonObject(line) ? line : wrap(service, stream, line)}\n`;
    const bytes = Buffer.byteLength(text);
    try {
      let file = this.#files.get(service) ?? this.#open(service);
      if (file.bytes > 0 && file.bytes + bytes > this.#maxBytes) file = this.#rotate(service, file);
      file.stream.write(text);
      file.bytes += bytes;
    } catch {
      // A full disk or a removed folder must not take the bank down with it: the terminal still shows the line.
    }
  }

  /** Flushes and closes every file. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const file of this.#files.values()) this.#closing.push(end(file.stream));
    this.#files.clear();
    await Promise.all(this.#closing);
  }

  #open(service: string): OpenFile {
    mkdirSync(this.dir, { recursive: true });
    const file = path.join(this.dir, `${service}.log`);
    // Opened now, not lazily by the stream: a rotation right after must rename the file this stream writes to.
    const fd = openSync(file, 'a');
    const stream = createWriteStream(file, { fd });
    stream.on('error', () => {});
    const opened = { stream, bytes: fstatSync(fd).size };
    this.#files.set(service, opened);
    return opened;
  }

  #rotate(service: string, file: OpenFile): OpenFile {
    // The old stream keeps its descriptor: what it still has buffered lands in the renamed file, in order.
    this.#closing.push(end(file.stream));
    this.#files.delete(service);
    const base = path.join(this.dir, `${service}.log`);
    rmSync(`${base}.${this.#keep}`, { force: true });
    for (let i = this.#keep - 1; i >= 1; i--) renameIfExists(`${base}.${i}`, `${base}.${i + 1}`);
    renameIfExists(base, `${base}.1`);
    return this.#open(service);
  }
}

function renameIfExists(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function end(stream: WriteStream): Promise<void> {
  return new Promise((resolve) => stream.end(resolve));
}

function isJsonObject(line: string): boolean {
  // Cheap on purpose (every line of every service passes here): pino writes exactly one object a line.
  return line.startsWith('{') && line.endsWith('}');
}

function wrap(service: string, stream: 'stdout' | 'stderr', line: string): string {
  const level = line.startsWith('[supervisor]') ? 40 : stream === 'stderr' ? 50 : 30;
  return JSON.stringify({ level, time: new Date().toISOString(), service, stream, msg: line });
}

// ---- reading ----------------------------------------------------------------------------------------------------

export const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
export type LevelName = keyof typeof LEVELS;

export interface LogFilter {
  /** Only these services (default: every service with a log file). */
  services?: string[];
  traceId?: string;
  requestId?: string;
  /** Minimum pino level (number). */
  minLevel?: number;
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, inclusive. */
  until?: number;
  /** Substring of the raw line. */
  text?: string;
}

export interface LogEntry {
  service: string;
  /** Epoch ms (NaN when the line has no readable time). */
  time: number;
  /** The JSON line as stored. */
  line: string;
}

/** Services that have log files in `dir`, sorted. */
export async function loggedServices(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return [...new Set(names.map((n) => /^([a-z0-9][a-z0-9-]*)\.log(\.\d+)?$/.exec(n)?.[1]).filter((n): n is string => n !== undefined))].sort();
}

/** A service's files, oldest first (`x.log.2`, `x.log.1`, `x.log`). */
async function filesOf(dir: string, service: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const rotated = names
    .map((n) => ({ n, i: Number(new RegExp(`^${service}\\.log\\.(\\d+)$`).exec(n)?.[1] ?? NaN) }))
    .filter((x) => Number.isInteger(x.i))
    .sort((a, b) => b.i - a.i)
    .map((x) => path.join(dir, x.n));
  return names.includes(`${service}.log`) ? [...rotated, path.join(dir, `${service}.log`)] : rotated;
}

/** Parses and filters one stored line; undefined when it does not match. */
export function matchLine(service: string, line: string, filter: LogFilter): LogEntry | undefined {
  if (filter.text !== undefined && !line.includes(filter.text)) return undefined;
  let entry: Record<string, unknown>;
  try {
    const v: unknown = JSON.parse(line);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    entry = v as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (filter.traceId !== undefined && entry.traceId !== filter.traceId) return undefined;
  if (filter.requestId !== undefined && entry.requestId !== filter.requestId) return undefined;
  if (filter.minLevel !== undefined && !(typeof entry.level === 'number' && entry.level >= filter.minLevel)) return undefined;
  const time = typeof entry.time === 'string' || typeof entry.time === 'number' ? new Date(entry.time).getTime() : NaN;
  if (filter.since !== undefined && !(time >= filter.since)) return undefined;
  if (filter.until !== undefined && !(time <= filter.until)) return undefined;
  return { service, time, line };
}

/** Every stored line that matches, all services merged in time order (a service's own order kept on ties). */
export async function readLogs(dir: string, filter: LogFilter = {}): Promise<LogEntry[]> {
  const services = filter.services ?? (await loggedServices(dir));
  const all: LogEntry[] = [];
  for (const service of services) {
    for (const file of await filesOf(dir, service)) {
      const lines = readline.createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
      for await (const line of lines) {
        const entry = matchLine(service, line, filter);
        if (entry) all.push(entry);
      }
    }
  }
  // Array.prototype.sort is stable: equal times keep each file's order.
  return all.sort((a, b) => (Number.isNaN(a.time) || Number.isNaN(b.time) ? 0 : a.time - b.time));
}

/**
 * Calls `onEntry` for every matching line appended to the services' current files from now on (rotation
 * included: the rest of a rotated file is read from `x.log.1` before moving to the new `x.log`), until `signal`.
 */
export async function followLogs(dir: string, filter: LogFilter, onEntry: (e: LogEntry) => void, signal: AbortSignal, pollMs = 250): Promise<void> {
  const positions = new Map<string, { ino: number; offset: number; rest: string }>();
  const known = async () => filter.services ?? (await loggedServices(dir));
  // Start at the current ends: what is there already was printed by readLogs.
  for (const service of await known()) {
    const s = await stat(path.join(dir, `${service}.log`)).catch(() => undefined);
    positions.set(service, { ino: s?.ino ?? -1, offset: s?.size ?? 0, rest: '' });
  }
  while (!signal.aborted) {
    for (const service of await known()) {
      const pos = positions.get(service) ?? { ino: -1, offset: 0, rest: '' };
      positions.set(service, pos);
      const file = path.join(dir, `${service}.log`);
      const s = await stat(file).catch(() => undefined);
      if (!s) continue;
      if (pos.ino !== -1 && s.ino !== pos.ino) {
        // Rotated: finish the old file (now x.log.1) first.
        const old = await stat(`${file}.1`).catch(() => undefined);
        if (old?.ino === pos.ino) await readFrom(`${file}.1`, pos, old.size, service, filter, onEntry);
        pos.ino = s.ino;
        pos.offset = 0;
        pos.rest = '';
      }
      pos.ino = s.ino;
      if (s.size < pos.offset) pos.offset = 0; // truncated
      if (s.size > pos.offset) await readFrom(file, pos, s.size, service, filter, onEntry);
    }
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, pollMs);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

async function readFrom(
  file: string,
  pos: { offset: number; rest: string },
  size: number,
  service: string,
  filter: LogFilter,
  onEntry: (e: LogEntry) => void,
): Promise<void> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(size - pos.offset);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, pos.offset);
    pos.offset += bytesRead;
    const text = pos.rest + buffer.subarray(0, bytesRead).toString('utf8');
    const lines = text.split('\n');
    // A line still being written stays for the next round.
    pos.rest = lines.pop() ?? '';
    for (const line of lines) {
      const entry = matchLine(service, line, filter);
      if (entry) onEntry(entry);
    }
  } finally {
    await handle.close();
  }
}

/** `10m`, `2h`, `30s`, `1d`, `500ms` before `now`, or an ISO date/time; epoch ms, or undefined if unreadable. */
export function parseTime(value: string, now = Date.now()): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value.trim());
  if (m) {
    const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
    return now - Number(m[1]) * unit;
  }
  if (!/^\d{4}-\d{2}-\d{2}/.test(value)) return undefined;
  const t = new Date(value).getTime();
  return Number.isNaN(t) ? undefined : t;
}
