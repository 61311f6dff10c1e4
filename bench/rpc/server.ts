// One server process of bench/rpc (stacks.ts): plain fastify (`bare`), or the echo service started by startService
// with the switches of that kind (`core`: all off; `metrics`, `observed`, `all`).
// Prints `READY <url>` once listening; exits on SIGTERM.
import { startBareEcho } from '../lib/bare-echo.ts';
import { startWiredServer, type Started } from '../lib/chassis.ts';
import { CPU_PATH, cpuReport, echoService } from './echo.ts';
import { WIRED, type ServerKind } from './stacks.ts';

const kind = process.argv[2] as ServerKind | undefined;
let server: Started;
if (kind === 'bare') {
  server = await startBareEcho(CPU_PATH, cpuReport);
} else if (kind === 'core' || kind === 'metrics' || kind === 'observed' || kind === 'all') {
  server = await startWiredServer(echoService, WIRED[kind]);
} else {
  throw new Error('usage: server.ts bare|core|metrics|observed|all');
}
process.stdout.write(`READY ${server.url}\n`);
process.once('SIGTERM', () => {
  void server.stop().then(() => process.exit(0));
});
