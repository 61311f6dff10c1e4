// A service with SOCKET_PATH serves on a Unix domain socket as well as on its TCP port, and a caller whose
// <SERVICE>_URL is `unix:<path>` reaches it there: two real services, real sockets.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { defineContract, defineService, implement, route, serviceFetch, startService, type RunningService } from '../src/index.ts';
import { socketPathOf } from '../src/http/socket.ts';

const TOKEN = 'test-service-token-0123456789';

const echoContract = defineContract({
  service: 'echo',
  routes: {
    echo: route({ method: 'POST', path: '/echo', body: z.object({ n: z.number().int() }), responses: { 200: z.object({ n: z.number().int(), via: z.string() }) } }),
  },
});

const echo = defineService({
  contract: echoContract,
  defaultPort: 0,
  setup: () => ({
    routes: implement(echoContract, {
      // Which server took the call: a Unix socket has no remote address.
      echo: async ({ body }, request) => ({ status: 200 as const, body: { n: body.n, via: request.ip ? 'tcp' : 'socket' } }),
    }),
  }),
});

const callerContract = defineContract({
  service: 'caller',
  routes: { relay: route({ method: 'POST', path: '/relay', body: z.object({ n: z.number().int() }), responses: { 200: z.object({ n: z.number().int(), via: z.string() }) } }) },
});

const caller = defineService({
  contract: callerContract,
  defaultPort: 0,
  dependencies: { echo: echoContract },
  setup: (ctx) => ({
    routes: implement(callerContract, {
      relay: async ({ body }) => ({ status: 200 as const, body: (await ctx.clients.echo.echo({ body })).body }),
    }),
  }),
});

let dir: string;
let socketPath: string;
let echoService: Pick<RunningService, 'url' | 'stop'>;
let callerService: Pick<RunningService, 'url' | 'stop'>;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'sb-socket-'));
  socketPath = path.join(dir, 'echo.sock');
  echoService = await startService(echo, { PORT: '0', LOG_LEVEL: 'silent', SERVICE_TOKEN: TOKEN, SOCKET_PATH: socketPath });
  callerService = await startService(caller, { PORT: '0', LOG_LEVEL: 'silent', SERVICE_TOKEN: TOKEN, ECHO_URL: `unix:${socketPath}` });
});

after(async () => {
  await callerService?.stop();
  await echoService?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('a caller with ECHO_URL=unix:<path> calls the service through its socket; TCP still serves', async () => {
  const relayed = await fetch(`${callerService.url}/relay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n: 7 }) });
  assert.equal(relayed.status, 200);
  assert.deepEqual(await relayed.json(), { n: 7, via: 'socket' });

  const direct = await fetch(`${echoService.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n: 8 }) });
  assert.deepEqual(await direct.json(), { n: 8, via: 'tcp' });
});

test('the socket answers as the TCP port does: validation, problem+json, health', async () => {
  const invalid = await fetch(`${callerService.url}/relay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n: 'x' }) });
  assert.equal(invalid.status, 400);
  assert.match(invalid.headers.get('content-type') ?? '', /application\/problem\+json/);
});

test('stop() closes the socket and removes its file; a stale file is replaced at start', async () => {
  const again = path.join(dir, 'again.sock');
  const first = await startService(echo, { PORT: '0', LOG_LEVEL: 'silent', SERVICE_TOKEN: TOKEN, SOCKET_PATH: again });
  assert.ok(existsSync(again));
  await first.stop();
  assert.equal(existsSync(again), false);
  // A file where the socket goes (as a killed process leaves one) does not stop the next start.
  await writeFile(again, '');
  const second = await startService(echo, { PORT: '0', LOG_LEVEL: 'silent', SERVICE_TOKEN: TOKEN, SOCKET_PATH: again });
  await second.stop();
});

test('socketPathOf: unix:<path> and unix://<path> name a socket; http URLs do not', () => {
  assert.equal(socketPathOf('unix:/run/sb/orders.sock'), '/run/sb/orders.sock');
  assert.equal(socketPathOf('unix:///run/sb/orders.sock'), '/run/sb/orders.sock');
  assert.equal(socketPathOf('http://127.0.0.1:8083'), undefined);
});

test('serviceFetch: by URL through the socket of a unix: base URL, or with the global fetch', async () => {
  const viaSocket = serviceFetch(`unix:${socketPath}`);
  assert.equal(viaSocket.origin, 'http://localhost');
  const res = await viaSocket.fetch(`${viaSocket.origin}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n: 9 }) });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { n: 9, via: 'socket' });

  const viaTcp = serviceFetch(`${echoService.url}/`);
  assert.equal(viaTcp.origin, echoService.url);
  assert.equal(viaTcp.fetch, globalThis.fetch);
  assert.deepEqual(await (await viaTcp.fetch(`${viaTcp.origin}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n: 10 }) })).json(), { n: 10, via: 'tcp' });
});
