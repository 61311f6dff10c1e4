import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { UpstreamError } from '@simplebank/chassis';
import { freePort } from '@simplebank/chassis/testing';
import { toPublicProblem } from '../src/upstream.ts';
import { api, assertProblem } from './api.ts';
import { startStack, type Stack } from './stack.ts';

const failure = (init: Partial<ConstructorParameters<typeof UpstreamError>[0]>) =>
  new UpstreamError({ kind: 'http', service: 'accounts', operation: 'getAccount', message: 'x', ...init });

describe('upstream failure → public problem (the mapping)', () => {
  test("the service's client errors pass through with their code, detail and fields", () => {
    for (const status of [400, 404, 409, 422]) {
      const p = toPublicProblem(failure({ status, problem: { type: 't', title: 't', status, code: `code_${status}`, detail: 'why', errors: [{ field: 'body.amount', message: 'bad' }] } }));
      assert.equal(p.status, status);
      assert.equal(p.code, `code_${status}`);
      assert.equal(p.message, 'why');
      assert.deepEqual(p.extensions.errors, [{ field: 'body.amount', message: 'bad' }]);
    }
  });

  test('a 401 or 403 from a service is our misconfiguration (502), unless the route says it is the caller’s', () => {
    const unauthorized = failure({ status: 401, problem: { type: 't', title: 't', status: 401, code: 'invalid_credentials' } });
    assert.equal(toPublicProblem(unauthorized).status, 502);
    assert.equal(toPublicProblem(unauthorized, { passThrough: [401] }).code, 'invalid_credentials');
    assert.equal(toPublicProblem(failure({ status: 403 })).status, 502);
  });

  test('timeouts are 504; unreachable or overloaded services 503 with Retry-After; failures 502', () => {
    const cases: [UpstreamError, number, string][] = [
      [failure({ kind: 'timeout' }), 504, 'upstream_timeout'],
      [failure({ status: 504 }), 504, 'upstream_timeout'],
      [failure({ kind: 'connection' }), 503, 'upstream_unavailable'],
      [failure({ status: 503 }), 503, 'upstream_unavailable'],
      [failure({ status: 429 }), 503, 'upstream_unavailable'],
      [failure({ status: 500 }), 502, 'bad_gateway'],
      [failure({ kind: 'invalid_response', status: 200 }), 502, 'bad_gateway'],
      [failure({ kind: 'rejected', code: 'bulkhead_full' }), 503, 'upstream_unavailable'],
    ];
    for (const [err, status, code] of cases) {
      const p = toPublicProblem(err);
      assert.equal(p.status, status, `${err.kind} ${err.status}`);
      assert.equal(p.code, code);
      assert.ok(!p.message.includes('accounts'), 'the public answer does not name internal services');
      if (status === 503) assert.equal(p.headers['retry-after'], '1');
    }
    // An open circuit says when it will probe again; the client is told to come back then (whole seconds).
    const open = toPublicProblem(failure({ kind: 'rejected', code: 'circuit_open', retryAfterMs: 4_200 }));
    assert.equal(open.status, 503);
    assert.equal(open.headers['retry-after'], '5');
  });
});

describe('upstream failures through the running gateway', () => {
  let stack: Stack;
  let client: ReturnType<typeof api>;
  let fake: Server;
  /** What the stand-in market-data does next. */
  let behaviour: 'ok' | 'hang' | 'fail' | 'shed' | 'garbage' = 'ok';

  before(async () => {
    fake = createServer((req, res) => {
      const problem = (status: number) => {
        res.writeHead(status, { 'content-type': 'application/problem+json' });
        res.end(JSON.stringify({ type: 'about:blank', title: 'x', status, code: status === 503 ? 'unavailable' : 'internal' }));
      };
      switch (behaviour) {
        case 'ok':
          res.writeHead(200, { 'content-type': 'application/json' });
          if (req.url?.startsWith('/prices/')) return res.end(JSON.stringify({ symbol: 'ACME', price: '12.34', asOf: '2026-01-02T03:04:05.000Z' }));
          return res.end(JSON.stringify([{ symbol: 'ACME', name: 'Acme Corp', currency: 'USD' }]));
        case 'hang':
          return; // never answers
        case 'fail':
          return problem(500);
        case 'shed':
          return problem(503);
        case 'garbage':
          res.writeHead(200, { 'content-type': 'application/json' });
          return res.end(JSON.stringify([{ ticker: 'nope' }]));
      }
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    const marketData = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
    // Orders points at a port where nothing listens: a service that is down.
    stack = await startStack(['customers', 'gateway'], { MARKET_DATA_URL: marketData, ORDERS_URL: `http://127.0.0.1:${await freePort()}` });
    client = api(stack.url('gateway'));
  });
  after(async () => {
    fake?.closeAllConnections();
    await new Promise((resolve) => fake?.close(resolve));
    await stack?.stop();
  });

  test('a healthy answer is mapped to the public shape', async () => {
    behaviour = 'ok';
    const res = await client.get('/api/v1/instruments');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, [{ symbol: 'ACME', name: 'Acme Corp' }]);
  });

  test('a service that does not answer in time is 504', async () => {
    behaviour = 'hang';
    // The caller's own deadline travels with the request: the gateway gives up on market-data after 300 ms.
    const started = Date.now();
    const res = await client.request('GET', '/api/v1/instruments', { headers: { 'x-deadline-ms': '300' } });
    assertProblem(res, 504, 'upstream_timeout');
    assert.ok(Date.now() - started < 3_000);
  });

  test('a failing service is 502, an overloaded one 503 with Retry-After, a contract-breaking one 502', async () => {
    behaviour = 'fail';
    assertProblem(await client.get('/api/v1/instruments'), 502, 'bad_gateway');
    behaviour = 'shed';
    const shed = await client.get('/api/v1/instruments');
    assertProblem(shed, 503, 'upstream_unavailable');
    assert.equal(shed.headers.get('retry-after'), '1');
    behaviour = 'garbage';
    assertProblem(await client.get('/api/v1/instruments'), 502, 'bad_gateway');
  });

  test('prices: with market-data failing or too slow, the last price flagged stale with its age', async () => {
    behaviour = 'ok';
    const fresh = await client.get('/api/v1/prices/ACME');
    assert.equal(fresh.status, 200);
    assert.deepEqual(fresh.body, { symbol: 'ACME', price: '12.34', asOf: '2026-01-02T03:04:05.000Z' });
    for (const b of ['shed', 'fail', 'hang'] as const) {
      behaviour = b;
      // 'hang': the price budget (GATEWAY_PRICE_BUDGET_MS, 1 s) ends the wait, well before the request's deadline.
      const res = await client.get('/api/v1/prices/ACME');
      assert.equal(res.status, 200, b);
      const body = res.body as { price: string; stale?: boolean; ageMs?: number };
      assert.equal(body.price, '12.34');
      assert.equal(body.stale, true, b);
      assert.ok(Number.isInteger(body.ageMs) && body.ageMs! >= 0);
    }
    // Never fetched: nothing to fall back on.
    behaviour = 'shed';
    assertProblem(await client.get('/api/v1/prices/OTHER'), 503, 'upstream_unavailable');
    behaviour = 'ok';
    assert.equal(((await client.get('/api/v1/prices/ACME')).body as { stale?: boolean }).stale, undefined, 'fresh again');
  });

  test('a service that is down is 503', async () => {
    const customer = await client.newCustomer('Patient Customer');
    const res = await client.get('/api/v1/orders', customer.token);
    assertProblem(res, 503, 'upstream_unavailable');
  });

  test('sign-up succeeds even when accounts is down (the event opens the account later)', async () => {
    // accounts is not running in this stack.
    const res = await client.post('/api/v1/customers', { name: 'Early Bird', email: 'early.bird@example.com', password: 'worm-catcher' });
    assert.equal(res.status, 201);
  });

  test('with customers down, known tokens still verify (cached keys) and log-in is 503', async () => {
    const customer = await client.newCustomer('Cached Key');
    // Warm the gateway's key cache, as any earlier request would have.
    await client.get('/api/v1/orders', customer.token);
    await stack.running.customers!.stop();
    // Past authentication (orders being down answers, not 401): the gateway needed nothing from customers.
    assertProblem(await client.get('/api/v1/orders', customer.token), 503, 'upstream_unavailable');
    assertProblem(await client.post('/api/v1/sessions', { email: customer.email, password: customer.password }), 503, 'upstream_unavailable');
  });
});
