import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
// The CLI does not depend on the chassis; only this test borrows its fault plugin to stand in for a service.
import { createFaultRegistry, faultsPlugin } from '../../../packages/chassis/src/protection/index.ts';
import { fault, parseFaultArgs, resolveServiceToken, serviceUrl, UsageError, type FaultIo } from '../src/commands/fault.ts';

test('parse: set with an incoming route, every effect and a duration', () => {
  assert.deepEqual(parseFaultArgs(['market-data', 'set', 'slow', '--route', 'get /prices/:symbol', '--latency', '500', '--error-rate', '0.5', '--hang', '--duration', '30']), {
    action: 'set',
    service: 'market-data',
    id: 'slow',
    body: { target: { direction: 'incoming', route: 'GET /prices/:symbol' }, latencyMs: 500, errorRate: 0.5, hang: true, durationSeconds: 30 },
  });
});

test('parse: set without --route targets every incoming route; --dependency targets outgoing calls', () => {
  assert.deepEqual(parseFaultArgs(['orders', 'set', 'x', '--hang']), {
    action: 'set',
    service: 'orders',
    id: 'x',
    body: { target: { direction: 'incoming', route: '*' }, hang: true },
  });
  const out = parseFaultArgs(['orders', 'set', 'acc', '--dependency', 'accounts', '--operation', 'reserve', '--error-rate', '1']);
  assert.deepEqual(out.action === 'set' && out.body.target, { direction: 'outgoing', dependency: 'accounts', operation: 'reserve' });
});

test('parse: list and clear', () => {
  assert.deepEqual(parseFaultArgs(['gateway', 'list']), { action: 'list', service: 'gateway', json: false });
  assert.deepEqual(parseFaultArgs(['gateway', 'list', '--json']), { action: 'list', service: 'gateway', json: true });
  assert.deepEqual(parseFaultArgs(['gateway', 'clear']), { action: 'clear', service: 'gateway' });
  assert.deepEqual(parseFaultArgs(['gateway', 'clear', 'slow']), { action: 'clear', service: 'gateway', id: 'slow' });
});

test('parse: mistakes are usage errors that say what is wrong', () => {
  const bad: [string[], RegExp][] = [
    [[], /which service/],
    [['orders'], /set, list or clear/],
    [['orders', 'break'], /unknown action/],
    [['orders', 'set'], /needs a fault id/],
    [['orders', 'set', 'x'], /needs --latency, --error-rate or --hang/],
    [['orders', 'set', 'x', '--latency', 'lots'], /--latency must be whole milliseconds/],
    [['orders', 'set', 'x', '--error-rate', '1.5'], /between 0 and 1/],
    [['orders', 'set', 'x', '--hang', '--duration', '0'], /--duration/],
    [['orders', 'set', 'x', '--hang', '--route', 'GET /a', '--dependency', 'accounts'], /exclude each other/],
    [['orders', 'set', 'x', '--hang', '--operation', 'reserve'], /--operation needs --dependency/],
    [['orders', 'set', 'x', '--hang', '--route', '/orders'], /METHOD \/path\/template/],
    [['orders', 'set', 'bad id', '--hang'], /invalid fault id/],
    [['orders', 'set', 'x', '--hang', '--bogus'], /Unknown option/],
    [['orders', 'list', '--latency', '5'], /only goes with set/],
    [['orders', 'clear', 'x', 'y'], /unexpected arguments/],
  ];
  for (const [args, message] of bad) assert.throws(() => parseFaultArgs(args), (err: Error) => err instanceof UsageError && message.test(err.message), args.join(' '));
});

test('service URLs: <SERVICE>_URL wins over the default port', () => {
  assert.equal(serviceUrl('market-data', {}), 'http://127.0.0.1:8085');
  assert.equal(serviceUrl('gateway', {}), 'http://127.0.0.1:8080');
  assert.equal(serviceUrl('market-data', { MARKET_DATA_URL: 'http://10.0.0.5:9000/' }), 'http://10.0.0.5:9000');
  assert.throws(() => serviceUrl('nope', {}), /unknown service "nope"/);
  assert.equal(serviceUrl('nope', { NOPE_URL: 'http://x:1' }), 'http://x:1');
});

test('service token: SERVICE_TOKEN, else the data folder file, else a clear error', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'simplebank-cli-fault-'));
  try {
    assert.equal(await resolveServiceToken({ SERVICE_TOKEN: 'from-env-0123456789', SIMPLEBANK_DATA_DIR: dir }), 'from-env-0123456789');
    await assert.rejects(resolveServiceToken({ SIMPLEBANK_DATA_DIR: dir }), /set SERVICE_TOKEN, or start the bank/);
    await writeFile(path.join(dir, 'service-token'), 'from-file-0123456789\n');
    assert.equal(await resolveServiceToken({ SIMPLEBANK_DATA_DIR: dir }), 'from-file-0123456789');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

function captured(env: Record<string, string | undefined>): FaultIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { env, out: (t) => stdout.push(t), err: (t) => stderr.push(t), stdout, stderr };
}

test('against a service with the fault plugin: set, list, clear one, clear all; errors explained', async () => {
  const token = 'cli-test-token-0123456789';
  const registry = createFaultRegistry({ enabled: true });
  const app = Fastify();
  app.get('/prices/:symbol', async () => ({ ok: true }));
  faultsPlugin(app, { registry, serviceToken: token });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  const env = { MARKET_DATA_URL: url, SERVICE_TOKEN: token };
  try {
    let io = captured(env);
    assert.equal(await fault(['market-data', 'set', 'slow', '--route', 'GET /prices/:symbol', '--latency', '500', '--duration', '30'], io), 0, io.stderr.join(''));
    assert.match(io.stdout.join(''), /slow {2}incoming GET \/prices\/:symbol {2}\+500 ms {2}\(clears in 30 s\)/);
    assert.equal(registry.get('slow')?.latencyMs, 500);

    io = captured(env);
    assert.equal(await fault(['market-data', 'set', 'md', '--dependency', 'market-feed', '--operation', 'quote', '--error-rate', '0.25'], io), 0);
    assert.deepEqual(registry.get('md')?.target, { direction: 'outgoing', dependency: 'market-feed', operation: 'quote' });

    io = captured(env);
    assert.equal(await fault(['market-data', 'list'], io), 0);
    const lines = io.stdout.join('').trim().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[1]!, /^md {2}outgoing market-feed\.quote {2}25% errors/);

    io = captured(env);
    assert.equal(await fault(['market-data', 'list', '--json'], io), 0);
    assert.deepEqual((JSON.parse(io.stdout.join('')) as { id: string }[]).map((f) => f.id), ['slow', 'md']);

    io = captured(env);
    assert.equal(await fault(['market-data', 'clear', 'slow'], io), 0);
    assert.equal(registry.get('slow'), undefined);
    io = captured(env);
    assert.equal(await fault(['market-data', 'clear', 'slow'], io), 1);
    assert.match(io.stderr.join(''), /answered 404: fault slow not found/);

    io = captured(env);
    assert.equal(await fault(['market-data', 'clear'], io), 0);
    assert.match(io.stdout.join(''), /1 fault\(s\) cleared/);
    assert.equal(registry.size(), 0);

    io = captured({ ...env, SERVICE_TOKEN: 'wrong-token-0123456789' });
    assert.equal(await fault(['market-data', 'list'], io), 1);
    assert.match(io.stderr.join(''), /refused the service credential/);

    io = captured(env);
    assert.equal(await fault(['market-data', 'set', 'x', '--hang', '--bogus'], io), 2);
    assert.match(io.stderr.join(''), /usage:/);
    io = captured(env);
    assert.equal(await fault(['--help'], io), 0);
    assert.match(io.stdout.join(''), /simplebank fault <service> list/);
  } finally {
    registry.close();
    await app.close();
  }
});

test('a service without fault injection, and one that is down', async () => {
  const app = Fastify();
  faultsPlugin(app, { registry: createFaultRegistry({ enabled: false }), serviceToken: 'cli-test-token-0123456789' });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const io = captured({ FEES_URL: url, SERVICE_TOKEN: 'cli-test-token-0123456789' });
    assert.equal(await fault(['fees', 'list'], io), 1);
    assert.match(io.stderr.join(''), /fault injection is disabled on fees \(start it with FAULTS_ENABLED=true\)/);
  } finally {
    await app.close();
  }
  const io = captured({ FEES_URL: url, SERVICE_TOKEN: 'cli-test-token-0123456789' });
  assert.equal(await fault(['fees', 'list'], io), 1, 'the server is closed now');
  assert.match(io.stderr.join(''), /fees is not reachable at/);
});
