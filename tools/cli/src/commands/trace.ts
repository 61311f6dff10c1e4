import { parseArgs } from 'node:util';
import { PROCESSES } from '../services.ts';
import { adminRequest, resolveServiceToken, serviceUrl, type AdminAnswer } from './admin-request.ts';

export const TRACE_HELP = "an order's whole trace as a waterfall, from every service's recent spans: trace <orderId|traceId> [--json]";

export const TRACE_USAGE = `usage:
  simplebank trace <orderId>    the trace of the request that placed the order (orders records its trace id)
  simplebank trace <traceId>    any trace, by its 32-hex-digit id (e.g. from a log line's traceId)
    --json    the spans (with their depth in the tree) as JSON instead of the waterfall
    --width   columns of the duration bars (default 40)

Spans come from each service's ring of recent spans (GET /admin/traces/:traceId, service credential): a service
keeps its last TRACE_RING_SPANS (1 000) spans, so an old order's trace may be gone. With OTEL_EXPORTER_OTLP_ENDPOINT
set, the same spans are in your tracing backend (e.g. Jaeger) for as long as it keeps them.
URLs: <SERVICE>_URL or the default ports. Credential: SERVICE_TOKEN or <data dir>/service-token.
`;

/** A span as the services' admin endpoint serves it (chassis trace/span-json.ts). */
export interface TraceSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: string;
  service: string;
  startUnixUs: number;
  durationUs: number;
  status: 'unset' | 'ok' | 'error';
  statusMessage?: string;
  attributes: Record<string, unknown>;
}

/** One line of the waterfall: a span at its depth in the tree. */
export interface WaterfallRow {
  span: TraceSpan;
  depth: number;
  /** Its parent is not among the spans (the caller outside the bank, or a span no longer kept). */
  orphan: boolean;
}

/** The spans as a tree, depth first, children in start order; spans whose parent is missing start a branch. */
export function waterfall(spans: TraceSpan[]): WaterfallRow[] {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const children = new Map<string, TraceSpan[]>();
  const roots: TraceSpan[] = [];
  for (const s of spans) {
    if (s.parentSpanId && byId.has(s.parentSpanId)) {
      const list = children.get(s.parentSpanId) ?? [];
      list.push(s);
      children.set(s.parentSpanId, list);
    } else roots.push(s);
  }
  const byStart = (a: TraceSpan, b: TraceSpan) => a.startUnixUs - b.startUnixUs || a.name.localeCompare(b.name);
  const rows: WaterfallRow[] = [];
  const visit = (span: TraceSpan, depth: number, orphan: boolean) => {
    rows.push({ span, depth, orphan });
    for (const child of (children.get(span.spanId) ?? []).sort(byStart)) visit(child, depth + 1, false);
  };
  for (const root of roots.sort(byStart)) visit(root, 0, root.parentSpanId !== undefined && roots.length > 1);
  return rows;
}

const ms = (us: number): string => (us >= 10_000_000 ? `${(us / 1e6).toFixed(1)} s` : us >= 1000 ? `${(us / 1000).toFixed(us >= 100_000 ? 0 : 1)} ms` : `${(us / 1000).toFixed(2)} ms`);

/** The waterfall as text: one line per span, indented by depth, with service, offset, a bar and the duration. */
export function formatWaterfall(traceId: string, spans: TraceSpan[], options: { barWidth?: number; heading?: string } = {}): string {
  if (spans.length === 0) return `trace ${traceId}: no spans\n`;
  const rows = waterfall(spans);
  const start = Math.min(...spans.map((s) => s.startUnixUs));
  const end = Math.max(...spans.map((s) => s.startUnixUs + s.durationUs));
  const total = Math.max(1, end - start);
  const width = options.barWidth ?? 40;
  const services = new Set(spans.map((s) => s.service));
  const errors = spans.filter((s) => s.status === 'error').length;
  const serviceWidth = Math.max(7, ...[...services].map((s) => s.length));
  const labels = rows.map((r) => `${'  '.repeat(r.depth)}${r.orphan ? '↳ ' : ''}${r.span.name}`);
  const labelWidth = Math.min(64, Math.max(9, ...labels.map((l) => l.length)));
  const out: string[] = [];
  out.push(`${options.heading ? `${options.heading}  ` : ''}trace ${traceId}`);
  out.push(`${spans.length} spans from ${services.size} services (${[...services].sort().join(', ')}), ${ms(total)}${errors ? `, ${errors} with errors` : ''}`);
  out.push('');
  out.push(`${'service'.padEnd(serviceWidth)}  ${'operation'.padEnd(labelWidth)}  ${'start'.padStart(9)}  ${'timeline'.padEnd(width)}  ${'duration'.padStart(9)}`);
  rows.forEach((row, i) => {
    const { span } = row;
    const offset = span.startUnixUs - start;
    const from = Math.min(width - 1, Math.floor((offset / total) * width));
    const length = Math.max(1, Math.min(width - from, Math.round((span.durationUs / total) * width)));
    const bar = ' '.repeat(from) + (span.status === 'error' ? '!' : '█').repeat(length) + ' '.repeat(width - from - length);
    let label = labels[i]!;
    if (label.length > labelWidth) label = `${label.slice(0, labelWidth - 1)}…`;
    const error = span.status === 'error' ? `  ✗ ${span.statusMessage ?? 'error'}` : '';
    out.push(`${span.service.padEnd(serviceWidth)}  ${label.padEnd(labelWidth)}  ${`+${ms(offset)}`.padStart(9)}  ${bar}  ${ms(span.durationUs).padStart(9)}${error}`);
  });
  return `${out.join('\n')}\n`;
}

export interface TraceIo {
  env: Record<string, string | undefined>;
  out: (text: string) => void;
  err: (text: string) => void;
  fetch?: typeof fetch;
}

const defaultIo: TraceIo = { env: process.env, out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

const TRACE_ID = /^[0-9a-f]{32}$/i;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What came back from one service. */
type Collected = { service: string; spans: TraceSpan[] } | { service: string; problem: string };

/** Every process's spans of the trace (in parallel, orders-worker's too); one that is down or keeps no spans says so. */
export async function collectTrace(traceId: string, io: Pick<TraceIo, 'env' | 'fetch'>, token: string): Promise<Collected[]> {
  const doFetch = io.fetch ?? fetch;
  return Promise.all(
    PROCESSES.map(async ({ name }): Promise<Collected> => {
      const base = serviceUrl(name, io.env);
      try {
        const { status, body } = await adminRequest(doFetch, `${base}/admin/traces/${traceId}`, token);
        if (status === 200) return { service: name, spans: (body.spans as TraceSpan[] | undefined) ?? [] };
        if (status === 401) return { service: name, problem: 'refused the service credential' };
        return { service: name, problem: typeof body.detail === 'string' ? body.detail : `answered ${status}` };
      } catch (err) {
        return { service: name, problem: `not reachable at ${base} (${(err as Error).message})` };
      }
    }),
  );
}

/** `simplebank trace <orderId|traceId> [--json]`: 0 printed, 1 not found or unreachable, 2 bad usage. */
export async function traceCommand(args: string[], io: TraceIo = defaultIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, strict: true, options: { json: { type: 'boolean' }, width: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    io.err(`simplebank trace: ${(err as Error).message}\n\n${TRACE_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(TRACE_USAGE);
    return 0;
  }
  const [id, ...extra] = positionals;
  const barWidth = values.width === undefined ? 40 : Number(values.width);
  if (!id || extra.length > 0 || (!UUID.test(id) && !TRACE_ID.test(id)) || !Number.isInteger(barWidth) || barWidth < 10 || barWidth > 200) {
    io.err(`simplebank trace: ${!id ? 'which order? ' : extra.length ? `unexpected arguments: ${extra.join(' ')}` : !Number.isInteger(barWidth) || barWidth < 10 || barWidth > 200 ? '--width must be a whole number from 10 to 200' : `"${id}" is neither an order id (uuid) nor a trace id (32 hex digits)`}\n\n${TRACE_USAGE}`);
    return 2;
  }
  let token: string;
  try {
    token = await resolveServiceToken(io.env);
  } catch (err) {
    io.err(`simplebank trace: ${(err as Error).message}\n`);
    return 1;
  }

  let traceId = id.toLowerCase();
  let heading: string | undefined;
  if (UUID.test(id)) {
    const base = serviceUrl('orders', io.env);
    let answer: AdminAnswer;
    try {
      answer = await adminRequest(io.fetch ?? fetch, `${base}/admin/orders/${id}/trace`, token);
    } catch (err) {
      io.err(`simplebank trace: orders is not reachable at ${base} (${(err as Error).message})\n`);
      return 1;
    }
    if (answer.status === 404) {
      io.err(`simplebank trace: no order ${id}\n`);
      return 1;
    }
    if (answer.status !== 200) {
      io.err(`simplebank trace: orders answered ${answer.status}${typeof answer.body.detail === 'string' ? `: ${answer.body.detail}` : ''}\n`);
      return 1;
    }
    if (typeof answer.body.traceId !== 'string') {
      io.err(`simplebank trace: order ${id} has no trace id recorded (placed before traces were kept)\n`);
      return 1;
    }
    traceId = answer.body.traceId;
    heading = `order ${id}`;
  }

  const collected = await collectTrace(traceId, io, token);
  const spans = collected.flatMap((c) => ('spans' in c ? c.spans : []));
  const missing = collected.filter((c): c is { service: string; problem: string } => 'problem' in c);
  if (values.json) {
    const rows = waterfall(spans);
    io.out(`${JSON.stringify({ traceId, spans: rows.map((r) => ({ ...r.span, depth: r.depth })), unavailable: missing }, null, 2)}\n`);
  } else {
    io.out(formatWaterfall(traceId, spans, { barWidth, ...(heading ? { heading } : {}) }));
    for (const m of missing) io.err(`(${m.service}: ${m.problem})\n`);
  }
  if (spans.length === 0) {
    io.err(`simplebank trace: no service has spans of trace ${traceId} (too old, not sampled, or tracing is off)\n`);
    return 1;
  }
  return 0;
}
