// One server process: plain fastify (`fastify-bare`), the chassis echo service started by startService with every
// switch off (`chassis-bare`) or with the defaults a bank service runs with (`chassis-full`), or a Moleculer callee
// broker with the `echo` service, its features on (`moleculer-full`) or off (`moleculer-bare`).
//
//   server.mjs fastify-bare|chassis-bare|chassis-full|chassis-full-socket
//   server.mjs moleculer-full|moleculer-bare <tcp|nats> <namespace>
//
// Prints `READY <target>` once serving: the chassis base URL (`unix:<path> <TCP URL>` for chassis-full-socket), or
// `<nodeID>@<host:port>` (TCP) / `<nodeID>` (NATS).
import os from 'node:os';
import path from 'node:path';
import { ServiceBroker } from 'moleculer';
import { startBareEcho } from '../lib/bare-echo.ts';
import { startWiredServer } from '../lib/chassis.ts';
import { brokerOptions, CHASSIS_FULL, CPU_PATH, echoSchema, echoService, freePort, processStats, type Transport } from './echo.ts';

const [kind, transportArg, namespace] = process.argv.slice(2);
if (kind === 'fastify-bare') {
  const running = await startBareEcho(CPU_PATH, processStats);
  process.stdout.write(`READY ${running.url}\n`);
} else if (kind === 'chassis-bare' || kind === 'chassis-full') {
  const running = await startWiredServer(echoService, kind === 'chassis-full' ? CHASSIS_FULL : {});
  process.stdout.write(`READY ${running.url}\n`);
} else if (kind === 'chassis-full-socket') {
  // Also on a Unix socket (SOCKET_PATH): the caller calls through it; its CPU report is read over TCP.
  const socketPath = path.join(os.tmpdir(), `sb-bench-echo-${process.pid}.sock`);
  const running = await startWiredServer(echoService, CHASSIS_FULL, { SOCKET_PATH: socketPath });
  process.stdout.write(`READY unix:${socketPath} ${running.url}\n`);
} else if ((kind === 'moleculer-full' || kind === 'moleculer-bare') && (transportArg === 'tcp' || transportArg === 'nats') && namespace) {
  const transport: Transport = transportArg;
  const nodeID = kind === 'moleculer-full' ? 'callee-full' : 'callee-bare';
  const tcpPort = transport === 'tcp' ? await freePort() : undefined;
  const broker = new ServiceBroker(await brokerOptions({ nodeID, namespace, transport, features: kind === 'moleculer-full', ...(tcpPort ? { tcpPort } : {}) }));
  broker.createService(echoSchema);
  await broker.start();
  process.stdout.write(`READY ${nodeID}${tcpPort ? `@127.0.0.1:${tcpPort}` : ''}\n`);
} else {
  throw new Error('usage: server.ts fastify-bare|chassis-bare|chassis-full|chassis-full-socket | moleculer-full|moleculer-bare tcp|nats <namespace>');
}
// No graceful drain: the measurement is over when the runner stops a server.
process.once('SIGTERM', () => process.exit(0));
process.once('disconnect', () => process.exit(0));
