import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { bankWalk } from './walk.ts';

// The same walk with BUS_URL=nats://…: every service on NATS JetStream instead of pg-boss.
const NATS = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

async function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port || 4222) });
    socket.setTimeout(1000);
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => { socket.destroy(); resolve(false); });
  });
}

if (await reachable(NATS)) {
  // A stream prefix of its own, so this bank shares the NATS server with nobody.
  bankWalk(async () => ({ busUrl: `${NATS}?streams=E2E_${randomBytes(4).toString('hex').toUpperCase()}` }));
} else {
  const { test } = await import('node:test');
  test('the bank on NATS JetStream', (t) => t.skip(`needs NATS JetStream at ${NATS} (or set NATS_URL)`));
}
