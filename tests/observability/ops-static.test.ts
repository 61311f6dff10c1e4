import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { SERVICES, processesOf } from '../../tools/cli/src/services.ts';
import {
  REPO, alerts, allowedSeries, dashboardQueries, listFiles, loadCatalog, loadDashboards, metricNames, panelsOf, readText, readYaml,
  recordedSeries, referencedSeries,
} from './ops-artifacts.ts';

// Static checks of deploy/observability/: rules and dashboards use only catalogued metrics, every alert is
// actionable (summary, severity, runbook), dashboards are well-formed and use the provisioned data source.

test('the PromQL reader finds the series of an expression and nothing else', () => {
  assert.deepEqual(
    metricNames('histogram_quantile(0.99, sum by (job, le) (rate(http_server_request_duration_seconds_bucket{route!~"/health/.*", le="0.5"}[5m]))) > 1e3'),
    ['http_server_request_duration_seconds_bucket'],
  );
  assert.deepEqual(metricNames('(a:b:c or vector(0)) / on (job) group_left(x) up{job=~"$job"} offset 5m and bool_thing > bool 2').sort(), ['a:b:c', 'bool_thing', 'up']);
  assert.deepEqual(metricNames('sum(rate(x_total{job=~"$job"}[$__rate_interval])) by (job)'), ['x_total']);
});

test('the metric catalog of docs/observability.md is readable', () => {
  const catalog = loadCatalog();
  assert.equal(catalog.get('http_server_request_duration_seconds')?.type, 'histogram');
  assert.equal(catalog.get('bus_dead_letter_events')?.type, 'gauge');
  assert.equal(catalog.get('simplebank_orders_transitions_total')?.type, 'counter');
  assert.ok(catalog.has('process_cpu_seconds_total'), 'the Process paragraph counts too');
  assert.ok(catalog.size >= 25, `only ${catalog.size} metrics found`);
});

test('rules and dashboards refer only to catalogued metrics and to recorded series that rules define', () => {
  const allowed = allowedSeries(loadCatalog());
  const recorded = recordedSeries();
  const refs = referencedSeries();
  assert.ok(refs.size > 20, 'the reader found the references');
  const unknown = [...refs]
    .filter(([name]) => (name.includes(':') ? !recorded.has(name) : !allowed.has(name)))
    .map(([name, where]) => `${name} (in ${where.join('; ')})`);
  assert.deepEqual(unknown, [], 'not in the metric catalog of docs/observability.md, nor recorded by a rule');
  for (const name of recorded) assert.match(name, /^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$/, `${name} follows level:metric:operations`);
});

test('every alert has a severity, a summary and a runbook that exists and is listed', () => {
  const all = alerts();
  assert.ok(all.length >= 10);
  const index = readText('docs/runbooks/README.md');
  const names = new Set<string>();
  for (const a of all) {
    assert.ok(!names.has(a.alert), `${a.alert} is defined once`);
    names.add(a.alert);
    assert.match(a.labels?.severity ?? '', /^(critical|warning)$/, `${a.alert}: severity`);
    assert.ok((a.annotations?.summary ?? '').trim().length > 10, `${a.alert}: summary`);
    assert.equal(a.annotations?.runbook_url, `docs/runbooks/${a.alert}.md`, `${a.alert}: runbook_url`);
    const runbook = path.join(REPO, 'docs/runbooks', `${a.alert}.md`);
    assert.ok(existsSync(runbook), `${a.alert}: docs/runbooks/${a.alert}.md exists`);
    const text = readText(`docs/runbooks/${a.alert}.md`);
    assert.match(text, new RegExp(`^# ${a.alert}\\n`), `${a.alert}: runbook title`);
    for (const heading of ['## What it means', '## Check', '## Act']) assert.ok(text.includes(heading), `${a.alert}: runbook has "${heading}"`);
    assert.ok(index.includes(`[${a.alert}](${a.alert}.md)`), `${a.alert}: listed in docs/runbooks/README.md`);
  }
  const stale = listFiles('docs/runbooks', '.md').map((f) => path.basename(f, '.md')).filter((n) => n !== 'README' && !names.has(n));
  assert.deepEqual(stale, [], 'runbooks without an alert');
});

test('every alert has promtool unit tests that fire it and that keep it quiet', () => {
  type AlertTest = { alertname: string; exp_alerts?: unknown[] };
  const cases = listFiles('deploy/observability/prometheus/tests', '.yml').flatMap((f) =>
    readYaml<{ tests: { alert_rule_test?: AlertTest[] }[] }>(f).tests.flatMap((t) => t.alert_rule_test ?? []),
  );
  for (const { alert } of alerts()) {
    const mine = cases.filter((c) => c.alertname === alert);
    assert.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${alert}: a test where it fires`);
    assert.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${alert}: a test where it does not fire`);
  }
});

test('dashboards: valid JSON, unique uids and panel ids, on the grid, every query on the provisioned Prometheus', () => {
  const provisioned = readYaml<{ datasources: { uid: string; type: string }[] }>('deploy/observability/grafana/provisioning/datasources/prometheus.yml');
  const prometheus = provisioned.datasources.find((d) => d.type === 'prometheus');
  assert.ok(prometheus, 'a Prometheus data source is provisioned');
  const dashboards = loadDashboards();
  assert.deepEqual(dashboards.map((d) => path.basename(d.file)), ['bank-overview.json', 'messaging.json', 'place-order.json', 'resilience.json']);
  assert.equal(new Set(dashboards.map((d) => d.dashboard.uid)).size, dashboards.length, 'unique uids');
  assert.equal(new Set(dashboards.map((d) => d.dashboard.title)).size, dashboards.length, 'unique titles');
  for (const { file, dashboard } of dashboards) {
    assert.match(dashboard.uid, /^[a-z0-9-]{1,40}$/, `${file}: uid`);
    const panels = panelsOf(dashboard);
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, `${file}: panel ids are unique`);
    assert.ok(ids.every((id) => Number.isInteger(id) && id > 0), `${file}: panel ids are positive integers`);
    for (const p of panels) {
      const where = `${file}: panel ${p.id} "${p.title}"`;
      assert.ok(p.gridPos && p.gridPos.x >= 0 && p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24 && p.gridPos.h > 0, `${where}: within the 24-column grid`);
      if (p.type === 'row') continue;
      assert.ok((p.targets ?? []).length > 0, `${where}: has queries`);
      assert.deepEqual(p.datasource, { type: 'prometheus', uid: prometheus.uid }, `${where}: panel data source`);
      const refIds = (p.targets ?? []).map((t) => t.refId);
      assert.equal(new Set(refIds).size, refIds.length, `${where}: unique refIds`);
      for (const t of p.targets ?? []) {
        assert.deepEqual(t.datasource, { type: 'prometheus', uid: prometheus.uid }, `${where} ${t.refId}: data source`);
        assert.ok(t.expr.trim().length > 0, `${where} ${t.refId}: expression`);
      }
    }
    for (const v of dashboard.templating?.list ?? []) {
      if (v.type === 'query') assert.deepEqual(v.datasource, { type: 'prometheus', uid: prometheus.uid }, `${file}: variable $${v.name}`);
    }
    // A variable used in a query must be defined (Grafana's own $__ variables aside).
    const defined = new Set((dashboard.templating?.list ?? []).map((v) => v.name));
    for (const q of dashboardQueries(dashboard)) {
      for (const m of q.expr.matchAll(/\$\{?(\w+)\}?/g)) if (!m[1]!.startsWith('__')) assert.ok(defined.has(m[1]!), `${file} ${q.where}: $${m[1]} is defined`);
    }
  }
});

test('scrape configs: one job per service, named after it, on its processes\' ports (local, compose) or by pod annotation (Kubernetes)', () => {
  type Scrape = { global: unknown; rule_files: string[]; scrape_configs: { job_name: string; static_configs?: { targets: string[] }[] }[] };
  const local = readYaml<Scrape>('deploy/observability/prometheus/prometheus.yml');
  assert.deepEqual(
    local.scrape_configs.map((s) => [s.job_name, s.static_configs?.[0]?.targets]),
    SERVICES.map((s) => [s.name, processesOf([s.name]).map((p) => `127.0.0.1:${p.port}`)]),
  );
  assert.deepEqual(local.rule_files, ['rules/*.yml']);
  const compose = readYaml<Scrape>('deploy/observability/prometheus/prometheus-compose.yml');
  assert.deepEqual(
    compose.scrape_configs.map((s) => [s.job_name, s.static_configs?.[0]?.targets]),
    SERVICES.map((s) => [s.name, processesOf([s.name]).map((p) => `${p.name}:${p.port}`)]),
  );

  // Debian's promtool is built without Kubernetes discovery, so this one is checked here rather than by promtool.
  type Relabel = { source_labels?: string[]; regex?: string; action?: string; target_label?: string; replacement?: string };
  const k8s = readYaml<{ rule_files: string[]; scrape_configs: { job_name: string; kubernetes_sd_configs: { role: string }[]; relabel_configs: Relabel[] }[] }>(
    'deploy/observability/prometheus/kubernetes.yml',
  );
  const [job] = k8s.scrape_configs;
  assert.ok(job && k8s.scrape_configs.length === 1);
  assert.deepEqual(job.kubernetes_sd_configs, [{ role: 'pod' }]);
  const by = (label: string) => job.relabel_configs.find((r) => r.source_labels?.includes(label));
  assert.equal(by('__meta_kubernetes_pod_annotation_prometheus_io_scrape')?.action, 'keep');
  assert.equal(by('__meta_kubernetes_pod_label_app_kubernetes_io_part_of')?.action, 'keep');
  assert.equal(by('__meta_kubernetes_pod_annotation_prometheus_io_path')?.target_label, '__metrics_path__');
  assert.equal(by('__meta_kubernetes_pod_label_app_kubernetes_io_name')?.target_label, 'job', 'job = service name, as the rules expect');
  const port = by('__meta_kubernetes_pod_annotation_prometheus_io_port')!;
  assert.equal(port.target_label, '__address__');
  // The address rewrite, as Prometheus applies it (source labels joined by ";", anchored regex).
  const rewrite = (address: string, p: string) => `${address};${p}`.replace(new RegExp(`^(?:${port.regex})$`), port.replacement!.replace(/\$(\d)/g, '$$$1'));
  assert.equal(rewrite('10.1.2.3:9999', '8083'), '10.1.2.3:8083');
  assert.equal(rewrite('10.1.2.3', '8083'), '10.1.2.3:8083');
  assert.ok(k8s.rule_files.length > 0);
});
