import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/**
 * Reads the operations artifacts of deploy/observability/ and the metric catalog of docs/observability.md, and
 * finds the metrics a PromQL expression refers to. Shared by the ops-*.test.ts files.
 */

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const OBS = path.join(REPO, 'deploy/observability');
export const PROM = path.join(OBS, 'prometheus');

export const readText = (file: string): string => readFileSync(path.join(REPO, file), 'utf8');
export const readYaml = <T = unknown>(file: string): T => parse(readText(file), { merge: true }) as T;
export const listFiles = (dir: string, ext: string): string[] =>
  readdirSync(path.join(REPO, dir)).filter((f) => f.endsWith(ext)).sort().map((f) => path.join(dir, f));

// ---- the metric catalog -----------------------------------------------------------------------------------------

export interface CatalogMetric {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
}

/** Every metric of docs/observability.md's "Metric catalog": its tables, plus the names of its Process paragraph. */
export function loadCatalog(): Map<string, CatalogMetric> {
  const text = readText('docs/observability.md');
  const start = text.indexOf('## Metric catalog');
  if (start < 0) throw new Error('docs/observability.md has no "## Metric catalog" section');
  const rest = text.slice(start + 1);
  const next = rest.search(/^## /m);
  const section = next < 0 ? rest : rest.slice(0, next);
  const catalog = new Map<string, CatalogMetric>();
  for (const m of section.matchAll(/^\|\s*`([a-zA-Z_:][\w:]*)`\s*\|\s*(counter|gauge|histogram|summary)\s*\|/gm)) {
    catalog.set(m[1]!, { name: m[1]!, type: m[2] as CatalogMetric['type'] });
  }
  const process = /^### Process[^\n]*\n([\s\S]*?)(?=^#|$(?![\s\S]))/m.exec(section)?.[1] ?? '';
  for (const m of process.matchAll(/`([a-zA-Z_:][\w:]*)`/g)) {
    if (!catalog.has(m[1]!)) catalog.set(m[1]!, { name: m[1]!, type: 'untyped' });
  }
  return catalog;
}

/** Series names a catalog allows: each metric, `up`, and the `_bucket`/`_sum`/`_count` series of histograms. */
export function allowedSeries(catalog: Map<string, CatalogMetric>): Set<string> {
  const allowed = new Set<string>(['up']);
  for (const m of catalog.values()) {
    allowed.add(m.name);
    if (m.type === 'histogram' || m.type === 'summary') for (const s of ['_sum', '_count', ...(m.type === 'histogram' ? ['_bucket'] : [])]) allowed.add(m.name + s);
  }
  return allowed;
}

// ---- PromQL -----------------------------------------------------------------------------------------------------

const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan', 'atan2']);

/**
 * The metric (and recorded series) names an expression selects. Not a full parser: strings, label matchers,
 * ranges, grouping clauses and Grafana variables are removed, then every identifier that is not a function call
 * or a keyword is a series name. `promtool check rules` (ops-promtool.test.ts) checks the syntax itself.
 */
export function metricNames(expr: string): string[] {
  let s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  s = s.replace(/#[^\n]*/g, ' ');
  s = s.replace(/\{[^}]*\}/g, ' ');
  s = s.replace(/\[[^\]]*\]/g, ' ');
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  s = s.replace(/\$\{?\w+\}?/g, ' ');
  const names = new Set<string>();
  for (const m of s.matchAll(/[a-zA-Z_:][\w:]*/g)) {
    const before = s[m.index - 1];
    if (before !== undefined && /[\w.]/.test(before)) continue; // part of a number (1e3) or a longer token
    const after = s.slice(m.index + m[0].length).trimStart();
    if (after.startsWith('(')) continue; // a function
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

// ---- rules ------------------------------------------------------------------------------------------------------

export interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface RuleFile {
  file: string;
  groups: { name: string; rules: Rule[] }[];
}

export function loadRules(): RuleFile[] {
  return listFiles('deploy/observability/prometheus/rules', '.yml').map((file) => ({ file, ...readYaml<{ groups: RuleFile['groups'] }>(file) }));
}

export const allRules = (): Rule[] => loadRules().flatMap((f) => f.groups.flatMap((g) => g.rules));
export const alerts = (): (Rule & { alert: string })[] => allRules().filter((r): r is Rule & { alert: string } => typeof r.alert === 'string');

// ---- dashboards -------------------------------------------------------------------------------------------------

export interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos?: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: { refId: string; expr: string; datasource?: { type?: string; uid?: string } }[];
  panels?: Panel[];
}
export interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating?: { list: { name: string; type: string; query?: string | { query: string }; datasource?: { type?: string; uid?: string } }[] };
}

export function loadDashboards(): { file: string; dashboard: Dashboard }[] {
  return listFiles('deploy/observability/grafana/dashboards', '.json').map((file) => ({ file, dashboard: JSON.parse(readText(file)) as Dashboard }));
}

/** Every panel, rows' nested panels included. */
export function panelsOf(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every query of a dashboard: panel targets and query variables (`label_values(metric, label)` counts its metric). */
export function dashboardQueries(d: Dashboard): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const p of panelsOf(d)) for (const t of p.targets ?? []) out.push({ where: `panel ${p.id} "${p.title}" ${t.refId}`, expr: t.expr });
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query' || v.query === undefined) continue;
    const q = typeof v.query === 'string' ? v.query : v.query.query;
    const lv = /^label_values\(\s*(?:(.+?)\s*,)?\s*\w+\s*\)$/.exec(q.trim());
    out.push({ where: `variable $${v.name}`, expr: lv ? (lv[1] ?? '') : q });
  }
  return out.filter((q) => q.expr !== '');
}

/** Grafana's variables replaced by values Prometheus accepts, for checking the syntax of a panel query. */
export function withoutGrafanaVariables(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m').replace(/\$\{?\w+\}?/g, '.+');
}

// ---- everything the artifacts refer to --------------------------------------------------------------------------

/** Metric → where it is referred to (rule or dashboard query), for rules and dashboards together. */
export function referencedSeries(): Map<string, string[]> {
  const refs = new Map<string, string[]>();
  const add = (name: string, where: string) => refs.set(name, [...(refs.get(name) ?? []), where]);
  for (const f of loadRules()) {
    for (const g of f.groups) for (const r of g.rules) for (const n of metricNames(r.expr)) add(n, `${f.file}: ${r.alert ?? r.record}`);
  }
  for (const { file, dashboard } of loadDashboards()) {
    for (const q of dashboardQueries(dashboard)) for (const n of metricNames(q.expr)) add(n, `${file}: ${q.where}`);
  }
  return refs;
}

/** The names recording rules define (level:metric:operations). */
export const recordedSeries = (): Set<string> => new Set(allRules().flatMap((r) => (r.record ? [r.record] : [])));
