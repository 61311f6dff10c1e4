import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createHttpServer, createLogger, defineContract } from '@simplebank/chassis';
import type { FastifyInstance } from 'fastify';
import { createPriceFeed } from '../src/feed.ts';
import { registerPriceStream, type PriceStream } from '../src/stream.ts';

async function waitFor(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The SSE hub alone, on a bare chassis server: who is connected, and what happens when they leave. */
describe('price stream', () => {
  let app: FastifyInstance;
  let stream: PriceStream;
  let url: string;

  before(async () => {
    const log = createLogger({ service: 'stream-test', level: 'silent' });
    app = createHttpServer({ contract: defineContract({ service: 'stream-test', routes: {} }), handlers: {}, log, serviceToken: 'test-token-0123456789', readiness: {} }).app;
    const feed = createPriceFeed({
      instruments: [
        { symbol: 'AAPL', name: 'Apple Inc.', currency: 'USD', baseCents: 19_250n },
        { symbol: 'MSFT', name: 'Microsoft Corporation', currency: 'USD', baseCents: 41_530n },
      ],
      seed: 42,
      tickMs: 20,
      stepBps: 5,
    });
    stream = registerPriceStream(app, feed, log);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  after(async () => app?.close());

  const open = async (query = '') => {
    const controller = new AbortController();
    const res = await fetch(`${url}/prices/stream${query}`, { signal: controller.signal });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    return { res, reader, controller };
  };

  it('forgets a client that disconnects', async () => {
    const a = await open();
    const b = await open('?symbols=MSFT');
    await a.reader.read();
    const first = await b.reader.read();
    assert.ok(!first.value?.includes('"AAPL"'), 'filtered to MSFT');
    assert.equal(stream.size(), 2);
    a.controller.abort();
    await waitFor('the aborted client to be dropped', () => stream.size() === 1);
    b.controller.abort();
    await waitFor('the last client to be dropped', () => stream.size() === 0);
  });

  it('keeps sending ticks to a connected client', async () => {
    const c = await open('?symbols=AAPL');
    const ids = new Set<string>();
    let text = '';
    while (ids.size < 3) {
      const { value, done } = await c.reader.read();
      if (done) break;
      text += value;
      for (const m of text.matchAll(/^id: (\d+)$/gm)) ids.add(m[1]!);
    }
    assert.ok(ids.size >= 3, 'one event per tick');
    c.controller.abort();
    await waitFor('the client to be dropped', () => stream.size() === 0);
  });

  it('rejects a malformed symbol list naming query.symbols', async () => {
    const res = await fetch(`${url}/prices/stream?symbols=aapl`);
    assert.equal(res.status, 400);
    const problem = (await res.json()) as { errors: { field: string }[] };
    assert.equal(problem.errors[0]?.field, 'query.symbols');
  });

  it('close() ends every open stream (shutdown)', async () => {
    const d = await open();
    await d.reader.read();
    stream.close();
    let done = false;
    while (!done) ({ done } = await d.reader.read());
    assert.equal(stream.size(), 0);
    const refused = await fetch(`${url}/prices/stream`);
    assert.equal(refused.status, 503);
  });
});
