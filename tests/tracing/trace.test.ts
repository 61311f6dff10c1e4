// One order = one trace: the whole bank started as `npm start` does, an order placed through the gateway, and
// `simplebank trace <orderId>` assembling its spans from every service. Structure only, never timing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { customerWithCash, eventually, waitForStatus } from '../e2e/api.ts';
import { bankForThisFile } from '../e2e/harness.ts';
import { PROCESSES } from '../../tools/cli/src/services.ts';
import { traceCommand, type TraceSpan } from '../../tools/cli/src/commands/trace.ts';
import { urlEnvOf } from '../../tools/cli/src/commands/admin-request.ts';

const fixture = bankForThisFile();

/** What a person would type, with the env the CLI would see beside this bank: its URLs and credential. */
async function runTrace(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const env: Record<string, string> = { SERVICE_TOKEN: fixture.bank.serviceToken };
  for (const p of PROCESSES) env[urlEnvOf(p.name)] = fixture.bank.processUrls[p.name]!;
  let out = '';
  let err = '';
  const code = await traceCommand(args, { env, out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

test('an order placed at the gateway is one trace across the services, shown as a waterfall', async () => {
  const { api: ada, accountId } = await customerWithCash(fixture.bank.gatewayUrl, '5000.00');
  const placed = await ada.call<{ id: string }>('POST', '/orders', { accountId, symbol: 'AAPL', side: 'buy', quantity: 2, type: 'market' }, { 'idempotency-key': crypto.randomUUID() });
  assert.equal(placed.status, 202);
  const orderId = placed.body.id;
  await waitForStatus(ada, orderId, ['filled']);

  // The order's last hops (the fill's consumers) may still be finishing: wait until the fee charge and the
  // settlement made after the fill are in the trace.
  const json = await eventually('the fill\'s spans in the trace', async () => {
    const { code, out } = await runTrace([orderId, '--json']);
    assert.equal(code, 0);
    const parsed = JSON.parse(out) as { traceId: string; spans: (TraceSpan & { depth: number })[] };
    const names = parsed.spans.map((s) => s.name);
    return names.includes('consume market.TradeExecuted.v1') && names.includes('fees.charge') && names.includes('accounts.settle') ? parsed : undefined;
  });
  const { spans } = json;
  assert.match(json.traceId, /^[0-9a-f]{32}$/);
  assert.ok(spans.every((s) => s.traceId === json.traceId), 'one trace id');

  const services = new Set(spans.map((s) => s.service));
  for (const name of ['gateway', 'orders', 'accounts', 'market', 'market-data', 'fees']) assert.ok(services.has(name), `${name} has spans in the trace (got ${[...services].join(', ')})`);

  // Parents resolved: one root (the gateway's request), every other span's parent is in the trace.
  const ids = new Set(spans.map((s) => s.spanId));
  const roots = spans.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId));
  assert.deepEqual(roots.map((r) => [r.service, r.name]), [['gateway', 'POST /api/v1/orders']]);
  assert.equal(spans[0]!.depth, 0);
  for (const s of spans.slice(1)) assert.ok(s.depth > 0);

  // The asynchronous hops are in it: the reserve step taken from orders' queue, and the saga's events, each written,
  // published and consumed.
  const names = spans.map((s) => `${s.service} ${s.name}`);
  for (const expected of [
    'orders POST /orders',
    'orders reserve order',
    'orders market-data.getPrice',
    'market-data GET /prices/:symbol',
    'orders accounts.reserve',
    'orders outbox orders.OrderAccepted.v1',
    'market consume orders.OrderAccepted.v1',
    'market outbox market.TradeExecuted.v1',
    'orders consume market.TradeExecuted.v1',
    'orders fees.charge',
    'orders accounts.settle',
  ]) {
    assert.ok(names.some((n) => n.startsWith(expected)), `${expected} in the trace:\n${names.join('\n')}`);
  }
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const reserve = spans.find((s) => s.service === 'orders' && s.name === 'reserve order')!;
  // The queued step continues the transaction that queued it, in the request that placed the order.
  const queuedBy = byId.get(reserve.parentSpanId!)!;
  assert.deepEqual([queuedBy.service, queuedBy.name, byId.get(queuedBy.parentSpanId!)!.name], ['orders', 'transaction', 'POST /orders']);
  const consumeAccepted = spans.find((s) => s.name === 'consume orders.OrderAccepted.v1')!;
  assert.equal(byId.get(consumeAccepted.parentSpanId!)!.name, 'outbox orders.OrderAccepted.v1', 'the consumer continues the context in the envelope');
  // Every server span of a callee hangs under the caller's client span.
  for (const server of spans.filter((s) => s.kind === 'server' && s.service !== 'gateway')) {
    assert.equal(byId.get(server.parentSpanId!)!.kind, 'client', `${server.service} ${server.name} is called by a client span`);
  }

  // The waterfall a person reads: a heading, then one line per span, indented by depth, with its service.
  const text = await runTrace([orderId]);
  assert.equal(text.code, 0);
  const lines = text.out.trimEnd().split('\n');
  assert.equal(lines[0], `order ${orderId}  trace ${json.traceId}`);
  assert.match(lines[1]!, new RegExp(`^${spans.length} spans from \\d+ services`));
  const rows = lines.slice(4);
  assert.equal(rows.length, spans.length);
  assert.match(rows[0]!, /^gateway\s+POST \/api\/v1\/orders\s+\+0\.00 ms\s+█/);
  for (const [i, s] of spans.entries()) {
    assert.ok(rows[i]!.startsWith(s.service), `row ${i} is ${s.service}'s: ${rows[i]}`);
    assert.ok(rows[i]!.includes(`${'  '.repeat(s.depth)}${s.name.slice(0, 20)}`), `row ${i} indented by its depth: ${rows[i]}`);
  }
});

test('trace explains what it cannot find', async () => {
  const unknown = await runTrace(['6f1d4b2a-0000-4000-8000-000000000000']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.err, /no order 6f1d4b2a/);
  const usage = await runTrace(['not-an-id']);
  assert.equal(usage.code, 2);
  assert.match(usage.err, /neither an order id/);
  const gone = await runTrace(['0123456789abcdef0123456789abcdef']);
  assert.equal(gone.code, 1);
  assert.match(gone.err, /no service has spans of trace/);
});
