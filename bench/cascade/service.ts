// One process of the cascade benchmark: `node --import tsx bench/cascade/service.ts holdings|prices|edge-off|edge-on|edge-sized`.
// Config from the environment as for any chassis service (PORT, SERVICE_TOKEN, HOLDINGS_URL, PRICES_URL, …).
// Prints `READY <url>` once listening; exits on SIGTERM or when its parent goes away.
import { startService } from '@simplebank/chassis';
import { edgeService, holdingsService, pricesService } from './services.ts';

const role = process.argv[2];
const env = { LOG_LEVEL: 'warn', HOST: '127.0.0.1', PORT: '0', SERVICE_TOKEN: 'bench-cascade-token-0123456789', ...process.env };
const running =
  role === 'holdings' ? await startService(holdingsService, env)
  : role === 'prices' ? await startService(pricesService, env)
  : role === 'edge-off' ? await startService(edgeService('off'), env)
  : role === 'edge-on' ? await startService(edgeService('on'), env)
  : role === 'edge-sized' ? await startService(edgeService('sized'), env)
  : undefined;
if (!running) throw new Error('usage: service.ts holdings|prices|edge-off|edge-on|edge-sized');
process.stdout.write(`READY ${running.url}\n`);
// No graceful drain: a benchmark process may hold thousands of queued requests; the run is over.
process.once('SIGTERM', () => process.exit(0));
process.once('disconnect', () => process.exit(0));
