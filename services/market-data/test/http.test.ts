import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient, isUpstreamError, startService, type RunningService } from '@simplebank/chassis';
import { createTestDatabase, type TestDatabase } from '@simplebank/chassis/testing';
import { parseMoney } from '@simplebank/money';
import { marketDataContract, Price } from '../src/contract.ts';
import { service } from '../src/service.ts';

const TOKEN = 'test-token-0123456789';

describe('market-data over HTTP', () => {
  let db: TestDatabase;
  let running: RunningService;
  let twin: RunningService;
  let client: ReturnType<typeof createClient<typeof marketDataContract>>;

  before(async () => {
    db = await createTestDatabase('market_data');
    const env = { PORT: '0', DATABASE_URL: db.url, SERVICE_TOKEN: TOKEN, LOG_LEVEL: 'silent', MARKET_DATA_TICK_MS: '50' };
    running = await startService(service, env);
    // A second instance on the same database: instances must agree on prices without talking to each other.
    twin = await startService(service, env);
    client = createClient(marketDataContract, { baseUrl: running.url });
  });

  after(async () => {
    await client?.close();
    await twin?.stop();
    await running?.stop();
    await db?.drop();
  });

  it('lists 20+ instruments, among them AAPL, MSFT and GOOGL', async () => {
    const { status, body } = await client.listInstruments({});
    assert.equal(status, 200);
    assert.ok(body.length >= 20, `${body.length} instruments`);
    const symbols = new Set(body.map((i) => i.symbol));
    for (const s of ['AAPL', 'MSFT', 'GOOGL', 'AMZN']) assert.ok(symbols.has(s), s);
    assert.equal(body.find((i) => i.symbol === 'AAPL')?.name, 'Apple Inc.');
  });

  it('quotes a price for every instrument', async () => {
    const [instruments, prices] = await Promise.all([client.listInstruments({}), client.listPrices({})]);
    assert.deepEqual(prices.body.map((p) => p.symbol).sort(), instruments.body.map((i) => i.symbol).sort());
    for (const p of prices.body) assert.ok(parseMoney(p.price) >= 100n);
  });

  it('getPrice answers a decimal-string price with its tick time', async () => {
    const { status, body } = await client.getPrice({ params: { symbol: 'AAPL' } });
    assert.equal(status, 200);
    assert.equal(body.symbol, 'AAPL');
    assert.match(body.price, /^\d+\.\d{2}$/);
    assert.ok(parseMoney(body.price) > 0n);
    assert.equal(new Date(body.asOf).getTime() % 50, 0, 'asOf is a tick boundary');
  });

  it('two instances quote the same price for the same tick', async () => {
    const twinClient = createClient(marketDataContract, { baseUrl: twin.url });
    try {
      // Retry until both answers fall in the same tick (they are two requests, a tick may pass between them).
      for (let i = 0; i < 50; i++) {
        const [a, b] = await Promise.all([client.getPrice({ params: { symbol: 'MSFT' } }), twinClient.getPrice({ params: { symbol: 'MSFT' } })]);
        if (a.body.asOf !== b.body.asOf) continue;
        assert.equal(a.body.price, b.body.price);
        return;
      }
      assert.fail('never caught both instances in the same tick');
    } finally {
      await twinClient.close();
    }
  });

  it('unknown symbol → 404 unknown_symbol problem+json', async () => {
    const res = await fetch(`${running.url}/prices/ZZZZ`);
    assert.equal(res.status, 404);
    assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
    const problem = (await res.json()) as { code: string; status: number };
    assert.equal(problem.code, 'unknown_symbol');
    assert.equal(problem.status, 404);
    // Through the typed client it is an UpstreamError carrying the code.
    await assert.rejects(client.getPrice({ params: { symbol: 'ZZZZ' } }), (err) => isUpstreamError(err) && err.status === 404 && err.code === 'unknown_symbol');
  });

  it('invalid symbol → 400 naming params.symbol', async () => {
    const res = await fetch(`${running.url}/prices/aapl`);
    assert.equal(res.status, 400);
    const problem = (await res.json()) as { code: string; errors: { field: string }[] };
    assert.equal(problem.code, 'validation_failed');
    assert.ok(problem.errors.some((e) => e.field === 'params.symbol'));
  });

  it('streams price events over SSE, one per symbol per tick', async () => {
    const controller = new AbortController();
    const res = await fetch(`${running.url}/prices/stream?symbols=AAPL,MSFT`, { signal: controller.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const events: { id: string; data: unknown }[] = [];
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      // Read until two ticks' worth of events arrived: the snapshot on connect plus at least one live tick.
      while (new Set(events.map((e) => e.id)).size < 2) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = Object.fromEntries(block.split('\n').filter((l) => l && !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
          if (fields.event === 'price') events.push({ id: fields.id!, data: JSON.parse(fields.data!) });
        }
      }
    } finally {
      controller.abort();
      await reader.cancel().catch(() => {});
    }
    assert.ok(events.length >= 2);
    for (const e of events) {
      const price = Price.parse(e.data);
      assert.ok(['AAPL', 'MSFT'].includes(price.symbol));
    }
    const firstTick = events.filter((e) => e.id === events[0]!.id);
    assert.deepEqual(firstTick.map((e) => (e.data as { symbol: string }).symbol).sort(), ['AAPL', 'MSFT']);
  });

  it('the stream rejects unknown symbols with a problem', async () => {
    const res = await fetch(`${running.url}/prices/stream?symbols=AAPL,ZZZZ`);
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { code: string }).code, 'unknown_symbol');
  });

  it('stops cleanly with a stream still open', async () => {
    const extra = await startService(service, { PORT: '0', DATABASE_URL: db.url, SERVICE_TOKEN: TOKEN, LOG_LEVEL: 'silent' });
    const controller = new AbortController();
    const res = await fetch(`${extra.url}/prices/stream`, { signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read();
    // Would hang if shutdown waited for the stream to finish on its own.
    await extra.stop();
    let done = false;
    while (!done) ({ done } = await reader.read());
    controller.abort();
  });
});
