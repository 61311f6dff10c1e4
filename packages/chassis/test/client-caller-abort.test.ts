// A caller that gives up (its AbortSignal aborts) is seen by the client's policies: a call waiting in the bulkhead's
// queue leaves it, a call in a retry's backoff is not tried again, and either way the caller gets the same error as
// for an abort on the wire. A plain node:http server plays the dependency.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { createClient, defineContract, isUpstreamError, route } from '../src/index.ts';
import { createBulkhead, createRetryPolicy } from '../src/resilience/index.ts';

const contract = defineContract({
  service: 'dep',
  routes: {
    /** Never answers (until the test ends). */
    hang: route({ method: 'GET', path: '/hang', responses: { 200: z.object({ ok: z.boolean() }) } }),
    /** Always 503: retryable. */
    unavailable: route({ method: 'GET', path: '/unavailable', responses: { 200: z.object({ ok: z.boolean() }) } }),
  },
});

const hanging: ServerResponse[] = [];
const requests: string[] = [];
let server: Server;
let baseUrl: string;

before(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push(req.url ?? '');
    if (req.url === '/hang') return void hanging.push(res);
    res.writeHead(503, { 'content-type': 'application/problem+json' });
    res.end(JSON.stringify({ type: 'about:blank', title: 'unavailable', status: 503, code: 'upstream_unavailable' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  for (const res of hanging) res.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Resolves once the server has received `n` requests for `url` (no sleeping for a guessed time). */
async function received(url: string, n: number): Promise<void> {
  while (requests.filter((u) => u === url).length < n) await new Promise((r) => setTimeout(r, 5));
}

/** The caller's abort, as the client reports it on the wire: a transport error caused by the abort's reason. */
const isCallerAbort = (reason: unknown) => (err: unknown) => isUpstreamError(err) && err.kind === 'connection' && err.cause === reason;

test('a call queued in the bulkhead leaves the queue when its caller aborts', async () => {
  const bulkhead = createBulkhead('dep', { maxConcurrent: 1, maxQueue: 4 });
  const client = createClient(contract, { baseUrl, policies: [bulkhead] });
  const inFlight = client.hang({ timeoutMs: 60_000 });
  inFlight.catch(() => {}); // ended with the server at the end
  const caller = new AbortController();
  const queued = client.hang({ timeoutMs: 60_000, signal: caller.signal });
  await received('/hang', 1);
  assert.equal(bulkhead.stats().queued, 1, 'the second call waits for the one slot');

  caller.abort(new Error('the caller gave up'));
  await assert.rejects(queued, isCallerAbort(caller.signal.reason));
  assert.equal(bulkhead.stats().queued, 0, 'it left the queue: no slot will ever be taken for it');
  assert.equal(bulkhead.stats().inUse, 1);
  assert.equal(requests.filter((u) => u === '/hang').length, 1, 'only the first call reached the dependency');
});

test('a call in a retry backoff is not tried again once its caller aborts', async () => {
  const before = requests.filter((u) => u === '/unavailable').length;
  // A long first backoff: the abort lands in it.
  const retry = createRetryPolicy({ maxAttempts: 3, baseDelayMs: 60_000, maxDelayMs: 60_000, random: () => 1 });
  const client = createClient(contract, { baseUrl, policies: [retry] });
  const caller = new AbortController();
  const call = client.unavailable({ signal: caller.signal });
  await received('/unavailable', before + 1);
  assert.equal(requests.filter((u) => u === '/unavailable').length - before, 1, 'the first attempt was made and failed');

  caller.abort(new Error('the caller gave up'));
  await assert.rejects(call, isCallerAbort(caller.signal.reason));
  assert.equal(requests.filter((u) => u === '/unavailable').length - before, 1, 'no second attempt');
});
