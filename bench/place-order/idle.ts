// The bank at rest (the default local run: embedded PostgreSQL, pg-boss bus):
// - time to `filled` for single market orders on an otherwise idle bank: one order at a time, POST, then poll GET
//   until it is final;
// - then what the bank burns doing nothing: each process's CPU over IDLE_S seconds after SETTLE_S seconds of quiet
//   (timers, polls, health probes: what a laptop pays for a bank left running).
//
//   node --import tsx bench/place-order/idle.ts            # ORDERS=20 SETTLE_S=10 IDLE_S=60
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '@simplebank/chassis/testing';
import { startBank } from '../../tools/cli/src/bank.ts';
import { bankCpu } from '../lib/proc-cpu.ts';

const ORDERS = Number(process.env.ORDERS ?? 20);
const SETTLE_S = Number(process.env.SETTLE_S ?? 10);
const IDLE_S = Number(process.env.IDLE_S ?? 60);

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'simplebank-idle-'));
  const bank = await startBank({ dataDir, ports: 'random', pgPort: await freePort(), quiet: true, readyTimeoutMs: 120_000, ...(process.env.BENCH_LOG_LEVEL ? { env: { LOG_LEVEL: process.env.BENCH_LOG_LEVEL } } : {}) });
  const api = async (method: string, p: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${bank.gatewayUrl}/api/v1${p}`, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> & Record<number, Record<string, unknown>> };
  };
  try {
    const email = `idle-${Date.now()}@example.com`;
    await api('POST', '/customers', { name: 'Idle', email, password: 'benchmark-password' });
    const token = (await api('POST', '/sessions', { email, password: 'benchmark-password' })).body.token as string;
    const auth = { authorization: `Bearer ${token}` };
    let accountId: string | undefined;
    while (!accountId) accountId = (await api('GET', '/accounts', undefined, auth)).body[0]?.id as string | undefined;
    await api('POST', `/accounts/${accountId}/deposits`, { amount: '1000000.00' }, { ...auth, 'idempotency-key': 'idle' });

    const times: number[] = [];
    for (let i = 0; i < ORDERS; i++) {
      const started = performance.now();
      const placed = await api('POST', '/orders', { accountId, symbol: 'AAPL', side: 'buy', quantity: 1, type: 'market' }, { ...auth, 'idempotency-key': `idle-${i}` });
      const id = placed.body.id as string;
      for (;;) {
        const { body } = await api('GET', `/orders/${id}`, undefined, auth);
        if (body.status === 'filled') break;
        if (['rejected', 'expired', 'cancelled'].includes(body.status as string)) throw new Error(`order ${id} ended ${String(body.status)}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    const at = (p: number) => Number(times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))]!.toFixed(1));

    // Every process has served an order by now, so what follows is the steady idle state, not start-up work.
    await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
    // "runner": this process, which supervises the bank as `npm start` does (its health probes included).
    const before = await bankCpu(bank, dataDir, 'runner');
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    const after = await bankCpu(bank, dataDir, 'runner');
    const idleCpuMsPerS = Object.fromEntries(Object.keys(after).map((k) => [k, Number(((1000 * (after[k]! - before[k]!)) / IDLE_S).toFixed(1))]));
    const total = Number(Object.values(idleCpuMsPerS).reduce((a, b) => a + b, 0).toFixed(1));
    console.log(JSON.stringify({ orders: ORDERS, timeToFilledMs: { p50: at(50), p90: at(90), max: at(100) }, idleS: IDLE_S, idleCpuMsPerS: { total, ...idleCpuMsPerS } }, null, 2));
  } finally {
    await bank.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
