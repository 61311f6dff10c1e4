// Place-order benchmark: open-loop load on POST /api/v1/orders against the bank started as `npm start` does
// (embedded PostgreSQL, pg-boss bus, one process per service), for DURATION_S seconds at RATE orders/s.
// Reports accepted orders/s, p50/p99 acceptance latency (request → 202), p99 time to `filled`
// (from the order's own history: pending → filled) and errors.
//
//   node --import tsx bench/place-order/run.ts            # RATE=200 DURATION_S=30
//   RATE=300 DURATION_S=60 BUS_URL=nats://127.0.0.1:4222 node --import tsx bench/place-order/run.ts
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import { startBank } from '../../tools/cli/src/bank.ts';
import { freePort } from '@simplebank/chassis/testing';

const RATE = Number(process.env.RATE ?? 200);
const DURATION_S = Number(process.env.DURATION_S ?? 30);
const CUSTOMERS = Number(process.env.CUSTOMERS ?? 40);
const SYMBOLS = ['AAPL', 'MSFT', 'GOOGL', 'AMZN', 'NVDA', 'META', 'TSLA', 'JPM'];

const pct = (sorted: number[], p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN);

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'simplebank-bench-'));
  const bank = await startBank({
    dataDir,
    ports: 'random',
    pgPort: await freePort(),
    quiet: true,
    readyTimeoutMs: 120_000,
    ...(process.env.BUS_URL ? { busUrl: process.env.BUS_URL } : {}),
    env: { LOG_LEVEL: 'warn' },
  });
  const pool = new Pool(bank.gatewayUrl, { connections: 256 });
  const call = async (method: string, p: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await pool.request({
      method: method as 'GET',
      path: `/api/v1${p}`,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.body.text();
    return { status: res.statusCode, body: text ? JSON.parse(text) : undefined };
  };
  try {
    // Customers with money, set up before the clock starts.
    const customers: { token: string; accountId: string }[] = [];
    for (let i = 0; i < CUSTOMERS; i++) {
      const email = `bench-${i}-${Date.now()}@example.com`;
      await call('POST', '/customers', { name: `Bench ${i}`, email, password: 'benchmark-password' });
      const { body: session } = await call('POST', '/sessions', { email, password: 'benchmark-password' });
      const auth = { authorization: `Bearer ${session.token}` };
      let accountId: string | undefined;
      while (!accountId) {
        accountId = (await call('GET', '/accounts', undefined, auth)).body?.[0]?.id;
        if (!accountId) await new Promise((r) => setTimeout(r, 50));
      }
      await call('POST', `/accounts/${accountId}/deposits`, { amount: '100000000.00' }, { ...auth, 'idempotency-key': 'bench' });
      customers.push({ token: session.token, accountId });
    }

    const latencies: number[] = [];
    const errors: Record<string, number> = {};
    const placed: { customer: number; id: string }[] = [];
    const total = RATE * DURATION_S;
    const start = performance.now();
    const inflight: Promise<void>[] = [];
    // Open loop: order n is sent at start + n/RATE whatever happened to earlier ones.
    for (let n = 0; n < total; n++) {
      const due = start + (n * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const c = n % CUSTOMERS;
      const customer = customers[c]!;
      const sent = performance.now();
      inflight.push(
        call('POST', '/orders', { accountId: customer.accountId, symbol: SYMBOLS[n % SYMBOLS.length], side: 'buy', quantity: 1, type: 'market' }, {
          authorization: `Bearer ${customer.token}`,
          'idempotency-key': `bench-${n}`,
        }).then(
          (res) => {
            if (res.status === 202) {
              latencies.push(performance.now() - sent);
              placed.push({ customer: c, id: res.body.id });
            } else errors[String(res.status)] = (errors[String(res.status)] ?? 0) + 1;
          },
          (err: Error) => {
            errors[err.message] = (errors[err.message] ?? 0) + 1;
          },
        ),
      );
    }
    await Promise.all(inflight);
    const elapsed = (performance.now() - start) / 1000;

    // Wait for every accepted order to become final, then read the time to fill from each order's history.
    const deadline = Date.now() + 120_000;
    let pending = placed.length;
    const fillTimes: number[] = [];
    const finals: Record<string, number> = {};
    while (Date.now() < deadline) {
      fillTimes.length = 0;
      for (const k of Object.keys(finals)) delete finals[k];
      pending = 0;
      for (let c = 0; c < CUSTOMERS; c++) {
        const { body: orders } = await call('GET', `/orders?accountId=${customers[c]!.accountId}&limit=500`, undefined, { authorization: `Bearer ${customers[c]!.token}` });
        for (const o of orders as { status: string; history: { status: string; at: string }[] }[]) {
          if (!['filled', 'rejected', 'expired', 'cancelled'].includes(o.status)) pending++;
          else finals[o.status] = (finals[o.status] ?? 0) + 1;
          if (o.status === 'filled') {
            const at = (s: string) => Date.parse(o.history.find((h) => h.status === s)!.at);
            fillTimes.push(at('filled') - at('pending'));
          }
        }
      }
      if (pending === 0) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    latencies.sort((a, b) => a - b);
    fillTimes.sort((a, b) => a - b);
    const result = {
      rateTarget: RATE,
      durationS: Number(elapsed.toFixed(1)),
      sent: total,
      accepted: latencies.length,
      acceptedPerS: Number((latencies.length / elapsed).toFixed(1)),
      acceptP50Ms: Number(pct(latencies, 50).toFixed(1)),
      acceptP99Ms: Number(pct(latencies, 99).toFixed(1)),
      filled: finals.filled ?? 0,
      notFinal: pending,
      otherFinal: Object.fromEntries(Object.entries(finals).filter(([k]) => k !== 'filled')),
      fillP50Ms: pct(fillTimes, 50),
      fillP99Ms: pct(fillTimes, 99),
      errors,
      bus: bank.busUrl.startsWith('nats') ? 'nats' : 'pg-boss',
    };
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await pool.close();
    await bank.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
