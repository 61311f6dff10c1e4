import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseExposition, seriesNames, type Exposition } from '@simplebank/chassis';
import type { Bank } from '../../tools/cli/src/bank.ts';
import { processesOf, type ServiceName } from '../../tools/cli/src/services.ts';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** One service's `GET /metrics`, parsed. */
export async function scrapeService(baseUrl: string): Promise<Exposition> {
  const res = await fetch(`${baseUrl}/metrics`);
  if (res.status !== 200) throw new Error(`${baseUrl}/metrics answered ${res.status}`);
  return parseExposition(await res.text());
}

/**
 * Every running service of the bank, scraped at once. A service that runs as several processes (orders: its API and
 * orders-worker) is their expositions together, so a sample's value is the sum over them, as `sum by (job)` reads it.
 */
export async function scrapeExpositions(bank: Bank): Promise<Map<ServiceName, Exposition>> {
  const scraped = await Promise.all(
    bank.services.map(async (s) => {
      const parts = await Promise.all(processesOf([s]).map((p) => scrapeService(bank.processUrls[p.name]!)));
      return [s, { families: new Map(parts.flatMap((e) => [...e.families])), samples: parts.flatMap((e) => e.samples) }] as const;
    }),
  );
  return new Map(scraped);
}

/**
 * The metric names each running service exports: every family it declares (`# TYPE`), whether or not it has a
 * sample yet, plus the names a query reads a histogram by (`x_bucket`, `x_sum`, `x_count`). A dashboard or rule
 * may use a name only if some service's set has it.
 */
export async function scrapeAll(bank: Bank): Promise<Map<ServiceName, Set<string>>> {
  const out = new Map<ServiceName, Set<string>>();
  for (const [service, exposition] of await scrapeExpositions(bank)) out.set(service, exportedNames(exposition));
  return out;
}

export function exportedNames(exposition: Exposition): Set<string> {
  const names = new Set<string>();
  for (const [name, { type }] of exposition.families) for (const n of seriesNames(name, type)) names.add(n);
  for (const s of exposition.samples) names.add(s.name);
  return names;
}

export interface CatalogEntry {
  name: string;
  type: string;
  labels: string[];
  /** The catalog section's heading, e.g. `HTTP server (chassis, every service)`. */
  section: string;
  /** The `service` column of the business section; undefined elsewhere. */
  service?: string;
}

/** The metric catalog of docs/observability.md: every row of its tables, with its section. */
export async function metricCatalog(): Promise<CatalogEntry[]> {
  const doc = await readFile(path.join(REPO_ROOT, 'docs/observability.md'), 'utf8');
  const start = doc.indexOf('## Metric catalog');
  if (start < 0) throw new Error('docs/observability.md has no "## Metric catalog" section');
  const next = doc.indexOf('\n## ', start + 1);
  const catalog = doc.slice(start, next < 0 ? undefined : next);
  const entries: CatalogEntry[] = [];
  let section = '';
  let columns: string[] = [];
  for (const line of catalog.split('\n')) {
    if (line.startsWith('### ')) {
      section = line.slice(4).trim();
      columns = [];
      continue;
    }
    if (!line.startsWith('|')) continue;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (cells.every((c) => /^-+$/.test(c))) continue;
    if (cells[0] === 'metric') {
      columns = cells;
      continue;
    }
    const name = /^`([a-z_:][a-z0-9_:]*)`$/.exec(cells[0] ?? '')?.[1];
    if (!name) continue;
    const cell = (column: string) => cells[columns.indexOf(column)] ?? '';
    // Label names are the backticked words outside parentheses (which list their values).
    const labels = [...cell('labels').replace(/\([^)]*\)/g, '').matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!);
    const service = columns.includes('service') ? cell('service') : undefined;
    entries.push({ name, type: cell('type'), labels, section, ...(service ? { service } : {}) });
  }
  return entries;
}
