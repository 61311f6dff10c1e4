// One server process: `chassis` (startService + the chassis HTTP server) or a Moleculer callee broker with the
// `echo` service, its features on (`moleculer-full`) or off (`moleculer-bare`).
//
//   server.mjs chassis
//   server.mjs moleculer-full|moleculer-bare <tcp|nats> <namespace>
//
// Prints `READY <target>` once serving: the chassis base URL, or `<nodeID>@<host:port>` (TCP) / `<nodeID>` (NATS).
import { ServiceBroker } from 'moleculer';
import { startService } from '@simplebank/chassis';
import { brokerOptions, echoSchema, echoService, freePort, type Transport } from './echo.ts';

const [kind, transportArg, namespace] = process.argv.slice(2);
if (kind === 'chassis') {
  // LOG_LEVEL info as in production: the per-request log line is debug, so it is filtered, but its check is paid.
  const running = await startService(echoService, { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', SERVICE_TOKEN: 'bench-token-0123456789' });
  process.stdout.write(`READY ${running.url}\n`);
} else if ((kind === 'moleculer-full' || kind === 'moleculer-bare') && (transportArg === 'tcp' || transportArg === 'nats') && namespace) {
  const transport: Transport = transportArg;
  const nodeID = kind === 'moleculer-full' ? 'callee-full' : 'callee-bare';
  const tcpPort = transport === 'tcp' ? await freePort() : undefined;
  const broker = new ServiceBroker(await brokerOptions({ nodeID, namespace, transport, features: kind === 'moleculer-full', ...(tcpPort ? { tcpPort } : {}) }));
  broker.createService(echoSchema);
  await broker.start();
  process.stdout.write(`READY ${nodeID}${tcpPort ? `@127.0.0.1:${tcpPort}` : ''}\n`);
} else {
  throw new Error('usage: server.ts chassis | moleculer-full|moleculer-bare tcp|nats <namespace>');
}
// No graceful drain: the measurement is over when the runner stops a server.
process.once('SIGTERM', () => process.exit(0));
process.once('disconnect', () => process.exit(0));
