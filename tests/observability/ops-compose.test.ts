import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { NODE_TUNING } from '../../tools/cli/src/node-tuning.ts';
import { BUS_DATABASE, PROCESSES, SERVICES, serviceInfo } from '../../tools/cli/src/services.ts';
import { OBS, REPO, readText, readYaml } from './ops-artifacts.ts';

// deploy/observability/docker-compose.yml cannot run here (no Docker engine): this parses it and checks that every
// service, port, URL, path and volume it names is consistent with itself and with the rest of the repository.

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: string[] | Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  cpu_shares?: number;
}
interface Compose {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

const COMPOSE_FILE = 'deploy/observability/docker-compose.yml';
const compose = readYaml<Compose>(COMPOSE_FILE);
const services = compose.services;

/** host:container pairs of `[ip:]host:container` port entries. */
function published(s: ComposeService): { ip: string; host: number; container: number }[] {
  return (s.ports ?? []).map((p) => {
    const parts = p.split(':');
    assert.ok(parts.length === 3, `port ${p} is bound to an address (127.0.0.1:host:container)`);
    return { ip: parts[0]!, host: Number(parts[1]), container: Number(parts[2]) };
  });
}

/** Ports a compose service listens on inside the network (the container side of its published ports). */
const portsOf = (name: string): number[] => published(services[name]!).map((p) => p.container);

/** Checks that a URL points at a compose service on a port it listens on; returns the service name. */
function assertReachable(url: string, where: string): string {
  const u = new URL(url);
  const target = services[u.hostname];
  assert.ok(target, `${where}: ${url} names a compose service`);
  const port = Number(u.port || (u.protocol === 'http:' ? 80 : NaN));
  assert.ok(portsOf(u.hostname).includes(port), `${where}: ${u.hostname} listens on ${port}`);
  return u.hostname;
}

test('one container per bank service, on its own port, from the image the Dockerfile builds', () => {
  const builders = Object.entries(services).filter(([, s]) => s.build);
  assert.equal(builders.length, 1, 'one service builds the image');
  const [builderName, builder] = builders[0]!;
  const context = path.resolve(OBS, builder.build!.context);
  assert.equal(context, REPO, 'the build context is the repository');
  assert.ok(existsSync(path.join(context, builder.build!.dockerfile)), 'the Dockerfile exists');
  // One container per process `npm start` runs: every service's own, and orders-worker beside orders' API.
  for (const p of PROCESSES) {
    const s = { ...serviceInfo(p.service), name: p.name, port: p.port };
    const c = services[s.name];
    assert.ok(c, `${s.name} is in the compose file`);
    assert.equal(c.image, builder.image, `${s.name} runs the bank image`);
    assert.deepEqual(c.command, [p.service], `${s.name}: the image's argument is the service name`);
    assert.ok(existsSync(path.join(REPO, 'services', p.service, 'src/main.ts')), `${s.name}: services/${p.service}/src/main.ts exists for the entry point`);
    const env = c.environment ?? {};
    assert.equal(env.PORT, String(s.port), `${s.name}: PORT`);
    assert.equal(env.SERVICE_ROLE, p.role === 'all' ? undefined : p.role, `${s.name}: SERVICE_ROLE`);
    assert.equal(env.HOST, '0.0.0.0', `${s.name}: listens on every interface of its container`);
    assert.deepEqual(published(c), [{ ip: '127.0.0.1', host: s.port, container: s.port }], `${s.name}: published on 127.0.0.1:${s.port}`);
    // Every service learns every other one's URL, as the local runner tells them.
    for (const peer of SERVICES) assert.equal(env[peer.urlEnv], `http://${peer.name}:${peer.port}`, `${s.name}: ${peer.urlEnv}`);
    for (const [key, value] of Object.entries(env)) if (/_URL$/.test(key) && /^https?:/.test(value)) assertReachable(value, `${s.name} ${key}`);
    if (s.database) {
      const db = new URL(env.DATABASE_URL ?? 'x:');
      assert.equal(db.pathname, `/${s.database}`, `${s.name}: its own database`);
      assert.ok(services[db.hostname]?.image?.startsWith('postgres:'), `${s.name}: DATABASE_URL points at the postgres service`);
    } else {
      assert.equal(env.DATABASE_URL, undefined, `${s.name} is stateless`);
    }
    assert.equal(assertReachable(env.BUS_URL!.replace(/^nats:/, 'http:'), `${s.name} BUS_URL`), 'nats', `${s.name}: the bus is NATS JetStream`);
    assert.equal(assertReachable(env.OTEL_EXPORTER_OTLP_ENDPOINT!, `${s.name} OTEL_EXPORTER_OTLP_ENDPOINT`), 'jaeger');
    assert.equal(new URL(env.OTEL_EXPORTER_OTLP_ENDPOINT!).port, '4318', 'OTLP over HTTP');
    assert.match(env.SERVICE_TOKEN ?? '', /^\$\{SIMPLEBANK_SERVICE_TOKEN:\?/, `${s.name}: the service credential is required, never defaulted`);
    assert.ok(c.healthcheck?.test.join(' ').includes('/health/ready'), `${s.name}: health check on readiness`);
    // What runs at WORKER_NICE under `npm start` gets a low CPU weight here (Docker's default, unset, is 1024).
    if (p.nice > 0) assert.ok(c.cpu_shares !== undefined && c.cpu_shares <= 64, `${s.name}: cpu_shares low, as its niceness ${p.nice} locally`);
    else assert.equal(c.cpu_shares, undefined, `${s.name}: Docker's default CPU weight`);
  }
  assert.ok(builderName in Object.fromEntries(SERVICES.map((s) => [s.name, 1])));
});

test('the infrastructure: JetStream on, PostgreSQL with every database, Jaeger on OTLP, Prometheus and Grafana provisioned', () => {
  assert.ok(services.nats?.command?.includes('-js'), 'NATS with JetStream');
  assert.ok(portsOf('nats').includes(4222));
  assert.ok(portsOf('jaeger').includes(4318) && portsOf('jaeger').includes(16686), 'Jaeger: OTLP/HTTP and UI');
  const init = readText('deploy/observability/postgres/init.sql');
  const created = [...init.matchAll(/CREATE DATABASE (\w+);/g)].map((m) => m[1]);
  const wanted = [...SERVICES.flatMap((s) => (s.database ? [s.database] : [])), BUS_DATABASE];
  assert.deepEqual([...created].sort(), [...wanted].sort(), 'init.sql creates one database per stateful service and the bus\'s');

  // Prometheus scrapes every bank service where compose runs it.
  const prometheus = services.prometheus!;
  const configMount = prometheus.volumes!.find((v) => v.includes(':/etc/prometheus/prometheus.yml'))!;
  assert.ok(configMount);
  type Scrape = { rule_files: string[]; scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };
  const config = readYaml<Scrape>(path.relative(REPO, path.resolve(OBS, configMount.split(':')[0]!)));
  for (const job of config.scrape_configs) {
    for (const target of job.static_configs.flatMap((c) => c.targets)) assertReachable(`http://${target}`, `prometheus job ${job.job_name}`);
  }
  assert.deepEqual(config.scrape_configs.map((j) => j.job_name), SERVICES.map((s) => s.name));
  // Its rule_files glob matches where the rules directory is mounted.
  const rulesMount = prometheus.volumes!.find((v) => v.startsWith('./prometheus/rules:'))!;
  assert.ok(rulesMount);
  assert.ok(config.rule_files.every((g) => g.startsWith(`${rulesMount.split(':')[1]}/`)), 'rule_files point into the mounted rules');

  // Grafana: provisioning and dashboards mounted where the provisioning files say.
  const grafana = services.grafana!;
  const mountTarget = (source: string) => grafana.volumes!.find((v) => v.startsWith(`${source}:`))?.split(':')[1];
  assert.equal(mountTarget('./grafana/provisioning'), '/etc/grafana/provisioning');
  const providers = readYaml<{ providers: { options: { path: string } }[] }>('deploy/observability/grafana/provisioning/dashboards/simplebank.yml');
  assert.equal(providers.providers[0]?.options.path, mountTarget('./grafana/dashboards'), 'the dashboards provider reads the mounted dashboards');
  const home = grafana.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH ?? '';
  assert.ok(existsSync(path.join(OBS, 'grafana/dashboards', path.basename(home))), 'the home dashboard exists');
  const datasources = readYaml<{ datasources: { type: string; url: string }[] }>('deploy/observability/grafana/provisioning/datasources/prometheus.yml');
  for (const d of datasources.datasources) assertReachable(d.url, `grafana data source ${d.type}`);
});

test('every reference inside the compose file resolves: dependencies, volumes, bind mounts, published ports', () => {
  const hostPorts = new Map<number, string>();
  for (const [name, s] of Object.entries(services)) {
    assert.ok(s.image, `${name}: has an image`);
    const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
    for (const d of deps) assert.ok(services[d], `${name} depends on ${d}, which is a service`);
    for (const v of s.volumes ?? []) {
      const [source] = v.split(':');
      if (source!.startsWith('.') || source!.startsWith('/')) {
        assert.ok(existsSync(path.resolve(OBS, source!)), `${name}: bind mount ${source} exists`);
      } else {
        assert.ok(compose.volumes && source! in compose.volumes, `${name}: named volume ${source} is declared`);
      }
    }
    for (const p of published(s)) {
      assert.equal(p.ip, '127.0.0.1', `${name}: ${p.host} is published on this machine only`);
      assert.ok(!hostPorts.has(p.host), `${name}: host port ${p.host} is also taken by ${hostPorts.get(p.host)}`);
      hostPorts.set(p.host, name);
    }
  }
  for (const volume of Object.keys(compose.volumes ?? {})) {
    assert.ok(Object.values(services).some((s) => (s.volumes ?? []).some((v) => v.startsWith(`${volume}:`))), `volume ${volume} is used`);
  }
});

test('the Dockerfile copies every workspace manifest before npm ci, and an entry point that runs a service', () => {
  const dockerfile = readText('Dockerfile');
  // `COPY <source>… <destination>`, with where in the file it stands.
  const copies = [...dockerfile.matchAll(/^COPY (.+)$/gm)].flatMap((m) => {
    const words = m[1]!.trim().split(/\s+/);
    const to = words.pop()!;
    return words.map((from) => ({ from, to, at: m.index }));
  });
  for (const c of copies) assert.ok(existsSync(path.join(REPO, c.from)), `COPY ${c.from}: exists`);
  const ci = dockerfile.indexOf('npm ci');
  const manifestsBeforeCi = copies.filter((c) => c.from.endsWith('package.json') && c.at < ci).map((c) => c.from);
  const workspaces = ['packages', 'services', 'tools'].flatMap((dir) =>
    readdirSync(path.join(REPO, dir))
      .filter((d) => statSync(path.join(REPO, dir, d)).isDirectory() && existsSync(path.join(REPO, dir, d, 'package.json')))
      .map((d) => `${dir}/${d}/package.json`),
  );
  assert.deepEqual([...manifestsBeforeCi].sort(), ['package-lock.json', 'package.json', ...workspaces].filter((f) => f.endsWith('package.json')).sort(), 'npm ci sees every workspace');
  assert.ok(dockerfile.indexOf('NODE_ENV=production') > ci, 'NODE_ENV=production only after npm ci (tsx is a dev dependency)');
  assert.match(dockerfile, new RegExp(`^\\s*NODE_OPTIONS=${NODE_TUNING}$`, 'm'), 'the image runs services with the Node.js flags `npm start` gives them');
  const entry = /^ENTRYPOINT \["([^"]+)"\]$/m.exec(dockerfile)?.[1];
  assert.ok(entry && copies.some((c) => c.to === entry), 'the entry point is copied into the image');
  const script = readText(entry);
  assert.match(script, /exec node .*--import tsx "services\/\$service\/src\/main\.ts"/);
  assert.ok((statSync(path.join(REPO, entry)).mode & 0o111) !== 0, 'the entry point is executable');
  const ignored = readText('.dockerignore');
  assert.match(ignored, /node_modules/);
  for (const needed of ['packages', 'services', 'deploy']) assert.doesNotMatch(ignored, new RegExp(`^${needed}$`, 'm'), `${needed} is not ignored`);
});
