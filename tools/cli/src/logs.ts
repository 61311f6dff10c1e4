/**
 * Turns the services' pino JSON lines into `hh:mm:ss [service] level msg k=v` for a terminal.
 * Lines that are not JSON (a crash trace, a stray console.log) are shown as they are.
 */

export type LineFormatter = (service: string, stream: 'stdout' | 'stderr', line: string) => string;

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const LEVEL_COLOURS: Record<string, number> = { warn: 33, error: 31, fatal: 31, debug: 90, trace: 90 };
// Bright, distinct foreground colours; red and grey stay reserved for levels.
const SERVICE_COLOURS = [36, 35, 32, 34, 33, 96, 95, 92, 94, 93];
// Fields every line carries (shown elsewhere or not worth the width).
const OMIT = new Set(['level', 'time', 'pid', 'hostname', 'service', 'version', 'instance', 'msg', 'err', 'error']);
const MAX_VALUE = 120;

export interface FormatOptions {
  /** All service names, to pad consistently and give each a stable colour. */
  names: readonly string[];
  colour?: boolean;
  /** Pass lines through untouched (for piping into jq or a log shipper). */
  json?: boolean;
}

export function createFormatter({ names, colour = false, json = false }: FormatOptions): LineFormatter {
  if (json) return (_service, _stream, line) => line;
  const width = Math.max(0, ...names.map((n) => n.length));
  const paint = (code: number | undefined, s: string) => (colour && code !== undefined ? `\x1b[${code}m${s}\x1b[0m` : s);
  const serviceColour = (service: string) => SERVICE_COLOURS[Math.max(0, names.indexOf(service)) % SERVICE_COLOURS.length];
  return (service, stream, line) => {
    const tag = paint(serviceColour(service), `[${service}]`.padEnd(width + 2));
    const entry = parse(line);
    if (!entry) return `${clock(new Date())} ${tag} ${stream === 'stderr' ? paint(31, line) : line}`;
    const level = typeof entry.level === 'number' ? (LEVELS[entry.level] ?? String(entry.level)) : String(entry.level ?? 'info');
    const time = typeof entry.time === 'string' || typeof entry.time === 'number' ? new Date(entry.time) : new Date();
    const extras = Object.entries(entry)
      .filter(([k, v]) => !OMIT.has(k) && v !== undefined && v !== null)
      .map(([k, v]) => `${k}=${show(v)}`);
    let out = `${clock(time)} ${tag} ${paint(LEVEL_COLOURS[level], level.padEnd(5))} ${String(entry.msg ?? '')}`;
    if (extras.length > 0) out += ` ${paint(90, extras.join(' '))}`;
    const err = (entry.err ?? entry.error) as { stack?: unknown; message?: unknown } | string | undefined;
    if (err !== undefined) {
      const text = typeof err === 'string' ? err : String(err.stack ?? err.message ?? JSON.stringify(err));
      out += `\n${text.split('\n').map((l) => `    ${l}`).join('\n')}`;
    }
    return out;
  };
}

function parse(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const v: unknown = JSON.parse(line);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function show(v: unknown): string {
  const s = typeof v === 'string' ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v) ?? String(v);
  return s.length > MAX_VALUE ? `${s.slice(0, MAX_VALUE)}…` : s;
}

function clock(d: Date): string {
  if (Number.isNaN(d.getTime())) d = new Date();
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}
