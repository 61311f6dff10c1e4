// Open-loop load on the edge: `rate` requests per second at fixed intervals, whatever the answers take (a closed
// loop would slow down with the system and hide the collapse). Requests before `t0` are warm-up (a ramp from 10 %
// to 100 % of the rate) and not reported.
// Latency counts from each request's scheduled send time, so a late send (a busy load process) is not hidden.
//
//   node --import tsx bench/cascade/load.ts <url> <rate> <t0 epoch ms> <warmupS> <durationS> <timeoutMs> <seed>
//
// Prints one JSON line: per request [scheduled ms since t0, latency ms, HTTP status (0 = no answer), price part].
import { Pool } from 'undici';

export type PriceCode = 0 | 1 | 2 | -1; // fresh, stale, unavailable, none (no 200)
export type Sample = [tMs: number, latencyMs: number, status: number, price: PriceCode];

const [url, rateArg, t0Arg, warmupArg, durationArg, timeoutArg, seedArg] = process.argv.slice(2);
if (!url) throw new Error('usage: load.ts <url> <rate> <t0> <warmupS> <durationS> <timeoutMs> <seed>');
const rate = Number(rateArg);
const t0 = Number(t0Arg);
const warmupMs = Number(warmupArg) * 1000;
const durationMs = Number(durationArg) * 1000;
const timeoutMs = Number(timeoutArg);
let seed = Number(seedArg) >>> 0;

// Hard stop, whatever happens: the run is bounded by construction.
setTimeout(() => {
  process.stderr.write('load: hard stop\n');
  process.exit(2);
}, t0 - Date.now() + durationMs + timeoutMs + 10_000).unref();

/** mulberry32: the same request sequence in both runs. */
function random(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

// No connection limit: an open loop must never wait for a free socket.
const pool = new Pool(url, { connections: null, pipelining: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, keepAliveTimeout: 60_000 });
const PRICE: Record<string, PriceCode> = { fresh: 0, stale: 1, unavailable: 2 };
const samples: Sample[] = [];
/** Per second: how late the load process itself sent (a starved load process shows here, not as the system's fault). */
const sendLagMs: number[] = [];
const failures: Record<string, number> = {};
const pending = new Set<Promise<void>>();

async function one(path: string, scheduled: number): Promise<void> {
  let status = 0;
  let priceCode: PriceCode = -1;
  try {
    const res = await pool.request({ method: 'GET', path });
    const text = await res.body.text();
    status = res.statusCode;
    if (status !== 200) {
      const key = `${status} ${(/"code":"([^"]+)"/.exec(text) ?? [])[1] ?? ''}`.trim();
      failures[key] = (failures[key] ?? 0) + 1;
      if (process.env.CASCADE_DEBUG && failures[key] === 1) process.stderr.write(`load: first ${key}: ${text.slice(0, 300)}\n`);
    }
    if (status === 200) priceCode = PRICE[(JSON.parse(text) as { price: { status: string } }).price.status] ?? -1;
  } catch (err) {
    status = 0;
    const code = (err as { code?: string }).code ?? (err as Error).name;
    failures[code] = (failures[code] ?? 0) + 1;
  }
  const end = Date.now();
  if (scheduled >= t0) samples.push([scheduled - t0, end - scheduled, status, priceCode]);
}

const start = t0 - warmupMs;
const end = t0 + durationMs;
/** Warm-up ramps from 10 % to 100 % of the rate (nothing goes from idle to full load cold); then steady. */
const rateAt = (t: number) => (t < t0 ? rate * (0.1 + (0.9 * (t - start)) / warmupMs) : rate);
let nextAt = start;
let sent = 0;
await new Promise((resolve) => setTimeout(resolve, Math.max(0, start - Date.now())));
await new Promise<void>((resolve) => {
  const tick = () => {
    const now = Date.now();
    for (;;) {
      const scheduled = nextAt;
      if (scheduled >= end) return resolve();
      if (scheduled > now) break;
      nextAt += 1000 / rateAt(nextAt);
      sent++;
      if (scheduled >= t0) {
        const sec = Math.floor((scheduled - t0) / 1000);
        sendLagMs[sec] = Math.max(sendLagMs[sec] ?? 0, now - scheduled);
      }
      const customer = `c${Math.floor(random() * 10_000)}`;
      const symbol = `S${Math.floor(random() * 1_000)}`;
      const p = one(`/screen/${customer}/${symbol}`, Math.round(scheduled));
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
    setTimeout(tick, 1);
  };
  tick();
});
await Promise.all(pending);
await pool.destroy();
process.stdout.write(`${JSON.stringify({ sent, samples, sendLagMs: Array.from(sendLagMs, (v) => v ?? 0), failures })}\n`);
