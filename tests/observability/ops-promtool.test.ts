import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import { PROM, REPO, dashboardQueries, listFiles, loadDashboards, withoutGrafanaVariables } from './ops-artifacts.ts';

// Prometheus' own checker on deploy/observability/prometheus: configs and rules are valid, and the rules' unit
// tests (prometheus/tests/*.yml) pass. promtool comes from Debian's `prometheus` package, installed by
// scripts/ensure-promtool.sh when missing; where that cannot work the test fails saying what to install.

let promtool = '';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'simplebank-promtool-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

before(() => {
  const ensure = spawnSync('bash', [path.join(REPO, 'scripts/ensure-promtool.sh')], { encoding: 'utf8', timeout: 600_000 });
  if (ensure.status !== 0) assert.fail(`promtool is needed and could not be installed:\n${ensure.stderr}${ensure.error ? String(ensure.error) : ''}`);
  promtool = ensure.stdout.trim().split('\n').pop()!;
});

function run(args: string[], cwd = PROM): { ok: boolean; output: string } {
  const r = spawnSync(promtool, args, { cwd, encoding: 'utf8', timeout: 120_000 });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}${r.error ? String(r.error) : ''}` };
}

test('promtool is there and is Prometheus 2.x', () => {
  const r = run(['--version']);
  assert.ok(r.ok, r.output);
  assert.match(r.output, /promtool, version 2\./);
});

test('promtool check config: the local and compose scrape configs', () => {
  for (const file of ['prometheus.yml', 'prometheus-compose.yml']) {
    const r = run(['check', 'config', file]);
    assert.ok(r.ok, `${file}:\n${r.output}`);
  }
});

test('promtool check rules: every rule file', () => {
  const files = listFiles('deploy/observability/prometheus/rules', '.yml').map((f) => path.join(REPO, f));
  assert.ok(files.length >= 2);
  const r = run(['check', 'rules', ...files]);
  assert.ok(r.ok, r.output);
  assert.doesNotMatch(r.output, /WARNING|FAILED/, r.output);
});

test('promtool test rules: every alert fires when it should and stays quiet when it should', () => {
  const files = listFiles('deploy/observability/prometheus/tests', '.yml').map((f) => path.join(REPO, f));
  assert.ok(files.length >= 3);
  const r = run(['test', 'rules', ...files]);
  assert.ok(r.ok, r.output);
  assert.equal(r.output.match(/SUCCESS/g)?.length, files.length, r.output);
});

test('every dashboard query is valid PromQL (checked by promtool as a recording rule)', () => {
  const rules = loadDashboards().flatMap(({ file, dashboard }) =>
    dashboardQueries(dashboard).map((q, i) => ({ record: `dashboard:${path.basename(file, '.json').replace(/-/g, '_')}:q${i}`, expr: withoutGrafanaVariables(q.expr) })),
  );
  assert.ok(rules.length > 40, `${rules.length} queries`);
  const file = path.join(tmp, 'dashboards.yml');
  writeFileSync(file, stringify({ groups: [{ name: 'dashboard-queries', rules }] }));
  const r = run(['check', 'rules', file]);
  assert.ok(r.ok, r.output);
});
