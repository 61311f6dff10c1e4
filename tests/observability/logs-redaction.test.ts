// Logs on real requests: every service's JSON lines (as the runner stores them, the same lines `npm start` shows)
// carry the fields an operator filters by, and never a password, a session token or an email address, even at
// the most verbose level and on the paths that fail (bad login, duplicate sign-up, a rejected order).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { logDir, readLogs, type LogEntry } from '../../tools/cli/src/log-files.ts';
import { PROCESSES } from '../../tools/cli/src/services.ts';
import { ApiClient, waitForStatus } from '../e2e/api.ts';
import { startTestBank } from '../e2e/harness.ts';

let testBank: Awaited<ReturnType<typeof startTestBank>>;
let lines: LogEntry[];

const email = `Grace.Hopper+${randomUUID().slice(0, 8)}@example.com`;
const password = 'cobol-compiler-1952';
let token = '';
let customerId = '';
let orderId = '';

before(async () => {
  testBank = await startTestBank({ env: { LOG_LEVEL: 'trace' } });
  const api = new ApiClient(testBank.bank.gatewayUrl);

  assert.equal((await api.call('POST', '/customers', { name: 'Grace Hopper', email, password })).status, 201);
  // Failing paths log too: a duplicate sign-up and a wrong password.
  assert.equal((await api.call('POST', '/customers', { name: 'Grace Hopper', email, password })).status, 409);
  assert.equal((await api.call('POST', '/sessions', { email, password: `${password}-wrong` })).status, 401);
  const session = await api.call<{ token: string; customerId: string }>('POST', '/sessions', { email, password });
  assert.equal(session.status, 200);
  token = session.body.token;
  customerId = session.body.customerId;
  api.token = token;

  const accounts = await api.call<{ id: string }[]>('GET', '/accounts');
  const accountId = accounts.body[0]!.id;
  assert.equal((await api.call('POST', `/accounts/${accountId}/deposits`, { amount: '500.00' }, { 'idempotency-key': randomUUID() })).status, 201);
  const placed = await api.call<{ id: string }>('POST', '/orders', { accountId, symbol: 'AAPL', side: 'buy', quantity: 1, type: 'market' }, { 'idempotency-key': randomUUID() });
  assert.equal(placed.status, 202);
  orderId = placed.body.id;
  await waitForStatus(api, orderId, ['filled']);
  // Insufficient funds: the saga's rejection path.
  const tooBig = await api.call<{ id: string }>('POST', '/orders', { accountId, symbol: 'AAPL', side: 'buy', quantity: 1000, type: 'market' }, { 'idempotency-key': randomUUID() });
  await waitForStatus(api, tooBig.body.id, ['rejected']);

  // Services stopped (their last lines flushed); the data dir and its log files stay until after().
  await testBank.bank.stop();
  lines = await readLogs(logDir(testBank.bank.dataDir));
});

after(async () => {
  await testBank?.stop();
});

test('services logged the walk at trace level', () => {
  const services = new Set(lines.map((l) => l.service));
  for (const s of ['gateway', 'customers', 'accounts', 'orders', 'market', 'fees']) assert.ok(services.has(s), `no log lines from ${s}`);
  assert.ok(lines.length > 50, `only ${lines.length} lines`);
});

test('no password, token or email address in any line', () => {
  const secrets = {
    password,
    token,
    // The signature alone is the secret part of a JWT; a token cut short must not leak either.
    'token signature': token.split('.').at(-1)!,
    email,
    'email (lower case)': email.toLowerCase(),
    'email local part': email.split('@')[0]!,
  };
  for (const { service, line } of lines) {
    for (const [what, secret] of Object.entries(secrets)) {
      assert.ok(!line.toLowerCase().includes(secret.toLowerCase()), `${service} logged the ${what}: ${line}`);
    }
    assert.doesNotMatch(line, /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[a-z]{2,}/, `${service} logged an email address: ${line}`);
  }
});

test('each line carries time (ISO, UTC), level, service, version and instance', () => {
  // A log file is a process's (orders-worker's lines say service orders, instance orders-worker).
  const processes = new Map(PROCESSES.map((p) => [p.name, p]));
  for (const { service: file, line } of lines) {
    const proc = processes.get(file);
    assert.ok(proc, `a log file for an unknown process: ${file}`);
    const service = proc.service;
    const entry = JSON.parse(line) as Record<string, unknown>;
    if (entry.stream !== undefined) continue; // a non-JSON line the runner wrapped (none expected, checked below)
    assert.match(String(entry.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, `${service}: ${line}`);
    assert.equal(typeof entry.level, 'number', `${service}: ${line}`);
    assert.equal(entry.service, service, line);
    assert.equal(typeof entry.version, 'string', `${service}: ${line}`);
    assert.ok(entry.instance !== undefined && entry.instance !== '', `${service}: ${line}`);
    if (proc.role !== 'all') assert.equal(entry.instance, proc.name, line);
    assert.equal(typeof entry.msg, 'string', `${service}: ${line}`);
  }
});

test('request lines carry request id, trace id and span id; the customer id where it is known', () => {
  const parsed = lines.map((l) => ({ service: l.service, entry: JSON.parse(l.line) as Record<string, unknown> }));
  const inRequests = parsed.filter((p) => p.entry.requestId !== undefined);
  assert.ok(inRequests.length > 0, 'no line carries a request id');
  for (const { service, entry } of inRequests) {
    assert.match(String(entry.traceId), /^[0-9a-f]{32}$/, `${service}: ${JSON.stringify(entry)}`);
    assert.match(String(entry.spanId), /^[0-9a-f]{16}$/, `${service}: ${JSON.stringify(entry)}`);
  }
  assert.ok(
    parsed.some((p) => p.service === 'gateway' && p.entry.customerId === customerId),
    'no gateway line names the logged-in customer by id',
  );
});

test("the exchange's line about the fill carries the order's trace id, like the lines of the requests that placed it", () => {
  const parsed = lines.map((l) => ({ service: l.service, entry: JSON.parse(l.line) as Record<string, unknown> }));
  const fill = parsed.find((p) => p.service === 'market' && p.entry.orderId === orderId && p.entry.outcome === 'fill');
  assert.ok(fill, "market logged no line for the order's fill");
  const received = parsed.find((p) => p.service === 'market' && p.entry.orderId === orderId && p.entry.msg === 'order received by the exchange');
  assert.ok(received, 'market logged no line for the order it received');
  assert.match(String(received.entry.traceId), /^[0-9a-f]{32}$/);
  assert.equal(fill.entry.traceId, received.entry.traceId, 'the fill line names the trace the order came in on');
});
