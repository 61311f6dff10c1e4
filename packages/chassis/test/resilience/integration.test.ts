// One end-to-end check over real HTTP: a fastify server that fails, a chassis client with the pipeline's policies.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { z } from 'zod';
import { createClient } from '../../src/client/client.ts';
import { defineContract, route } from '../../src/contract/define.ts';
import { createResiliencePipeline, isRejectedError, type BreakerStateChange } from '../../src/resilience/index.ts';
import { delay } from './helpers.ts';

const flakyContract = defineContract({
  service: 'flaky',
  routes: {
    quote: route({ method: 'GET', path: '/quote', responses: { 200: z.object({ n: z.number() }) } }),
  },
});

let mode: 'half' | 'down' | 'up' = 'half';
let requests = 0;
const server = Fastify();
server.get('/quote', async (_req, reply) => {
  requests++;
  // Every other request fails: exactly 50 %, so the assertions do not depend on luck.
  const fail = mode === 'down' || (mode === 'half' && requests % 2 === 0);
  if (fail) return reply.code(503).type('application/problem+json').send({ type: 'about:blank', title: 'Service Unavailable', status: 503, code: 'unavailable' });
  return { n: requests };
});
let baseUrl: string;

before(async () => {
  baseUrl = await server.listen({ port: 0, host: '127.0.0.1' });
});
after(async () => {
  await server.close();
});

test('500 calls at 50 % failure: the server sees at most 20 % more requests than first attempts', async (t) => {
  mode = 'half';
  requests = 0;
  // Threshold 0.8: this test is about the budget, and a 50 % failure rate must not open the circuit.
  const pipeline = createResiliencePipeline('flaky', { retryBaseDelayMs: 1, retryMaxDelayMs: 5, budgetMinRetriesPerSecond: 1, breakerThreshold: 0.8 });
  const client = createClient(flakyContract, { baseUrl, policies: pipeline.policies });
  let ok = 0;
  let failed = 0;
  const worker = async (calls: number) => {
    for (let i = 0; i < calls; i++) {
      try {
        await client.quote({});
        ok++;
      } catch (err) {
        assert.equal((err as { status?: number }).status, 503);
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: 10 }, () => worker(50)));
  await client.close();

  const { budget, breaker } = pipeline.stats();
  const floor = 1 * 10; // budgetMinRetriesPerSecond × window seconds
  t.diagnostic(`${requests} server requests, ${budget.attempts} first attempts, ${budget.retries} retries, ${budget.budgetExhausted} refused by the budget; ${ok} ok, ${failed} failed`);
  assert.equal(ok + failed, 500);
  assert.equal(budget.attempts, 500);
  assert.equal(requests, budget.attempts + budget.retries, 'every server request is a counted attempt or retry');
  assert.ok(requests <= Math.max(1.2 * budget.attempts, budget.attempts + floor), `${requests} requests for ${budget.attempts} first attempts`);
  assert.ok(budget.retries >= 90, `the budget was used (${budget.retries} retries)`);
  assert.ok(ok > 250, `retries turned some failures into successes (${ok} ok)`);
  assert.equal(breaker.status, 'closed');
});

test('the breaker opens while the server is down, fails fast, and closes after it is back', async () => {
  mode = 'down';
  requests = 0;
  const pipeline = createResiliencePipeline('flaky', {
    retryBaseDelayMs: 1,
    retryMaxDelayMs: 5,
    breakerWindowMs: 1000,
    breakerMinThroughput: 10,
    breakerHalfOpenAfterMs: 100,
  });
  const changes: BreakerStateChange[] = [];
  pipeline.breaker.onStateChange((c) => changes.push(c));
  const client = createClient(flakyContract, { baseUrl, policies: pipeline.policies });

  let calls = 0;
  while (pipeline.breaker.state.status === 'closed' && calls < 100) {
    calls++;
    await client.quote({}).catch(() => undefined);
  }
  assert.equal(pipeline.breaker.state.status, 'open', `still closed after ${calls} calls`);

  const seen = requests;
  const err = await client.quote({}).catch((e: unknown) => e);
  assert.ok(isRejectedError(err) && err.code === 'circuit_open', 'fails fast while open');
  assert.equal(requests, seen, 'no request reached the server');

  mode = 'up';
  await delay(130); // half-open after 100 ms ± 20 %
  const res = await client.quote({});
  assert.equal(res.status, 200);
  assert.equal(pipeline.breaker.state.status, 'closed');
  assert.deepEqual(changes.map((c) => c.to.status), ['open', 'half-open', 'closed']);
  await client.close();
});
