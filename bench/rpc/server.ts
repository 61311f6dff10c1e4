// One server process: `chassis` (startService + the chassis HTTP server) or `bare` (plain fastify).
// Prints `READY <url>` once listening; exits on SIGTERM.
import Fastify from 'fastify';
import { startService } from '@simplebank/chassis';
import { CPU_PATH, cpuReport, echoService, isMode } from './echo.ts';

const mode = process.argv[2];
if (!isMode(mode)) throw new Error('usage: server.ts chassis|bare');

let url: string;
let stop: () => Promise<void>;
if (mode === 'chassis') {
  // LOG_LEVEL info as in production: the per-request log line is debug, so it is filtered, but its cost is paid.
  const running = await startService(echoService, { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', SERVICE_TOKEN: 'bench-token-0123456789' });
  url = running.url;
  stop = running.stop;
} else {
  const app = Fastify({ logger: false });
  app.get<{ Params: { id: string } }>('/echo/:id', async (request) => ({ id: request.params.id, ok: true }));
  app.get(CPU_PATH, async () => cpuReport());
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  stop = () => app.close();
}
process.stdout.write(`READY ${url}\n`);
process.once('SIGTERM', () => {
  void stop().then(() => process.exit(0));
});
