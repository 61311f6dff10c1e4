/**
 * A reader for the Prometheus text format (what `GET /metrics` answers), for tests and tools that look at a scrape:
 * which metric families a service declares, and the value of a sample.
 */
export interface Sample {
  /** The sample's own name: `x_total`, or `x_bucket` / `x_sum` / `x_count` of histogram `x`. */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  /** Families by name, from their `# TYPE` lines. */
  families: Map<string, { type: string; help: string }>;
  samples: Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/gy;

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = LABEL.exec(text)) !== null) {
    labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_all, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

export function parseExposition(text: string): Exposition {
  const families = new Map<string, { type: string; help: string }>();
  const helps = new Map<string, string>();
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const [, kind, name, ...rest] = line.split(/\s+/);
      if (!name) continue;
      if (kind === 'HELP') helps.set(name, rest.join(' '));
      else if (kind === 'TYPE') families.set(name, { type: rest[0] ?? 'untyped', help: helps.get(name) ?? '' });
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    samples.push({ name: m[1]!, labels: m[3] ? parseLabels(m[3]) : {}, value: parseValue(m[4]!) });
  }
  return { families, samples };
}

/**
 * The names a PromQL query can use for a family: a histogram `x` is read as `x_bucket`, `x_sum` and `x_count`;
 * every other family by its own name.
 */
export function seriesNames(name: string, type: string): string[] {
  return type === 'histogram' || type === 'summary' ? [name, `${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
}

/** The sum of the samples named `name` whose labels include `labels`. */
export function sampleValue(exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const s of exposition.samples) {
    if (s.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}
