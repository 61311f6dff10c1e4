// Place-order benchmark: open-loop load on POST /api/v1/orders against the bank started as `npm start` does
// (embedded PostgreSQL, pg-boss bus, one process per service, orders as its API and orders-worker), for DURATION_S seconds at RATE orders/s.
// Reports accepted orders/s, p50/p99 acceptance latency (request → 202), p99 time to `filled`
// (from the order's own history: pending → filled) and errors. The measured run follows WARMUP_S (5) seconds of the
// same load, whose orders finish before the clock starts; the warm-up's own figures are printed too.
//
//   npm run bench bench/place-order/run.ts            # RATE=200 DURATION_S=30 WARMUP_S=5, on the pinned Node.js
//   PROFILE=orders,accounts npm run bench bench/place-order/run.ts   # V8 CPU profiles (slower: don't quote)
//   RATE=300 DURATION_S=60 BUS_URL=nats://127.0.0.1:4222 npm run bench bench/place-order/run.ts
//   KEEP_DATA=1 CPU_DETAIL=1 npm run bench bench/place-order/run.ts   # leaves the data dir (postgres.log) behind
// The services run on the Node.js this runs on: `npm run bench` uses the one package.json pins (a plain
// `node --import tsx …` from a shell would measure the system's instead).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { Pool } from 'undici';
import { startBank } from '../../tools/cli/src/bank.ts';
import { SERVICE_NAMES } from '../../tools/cli/src/services.ts';
import { bankCpu, postgresCpuByKind } from '../lib/proc-cpu.ts';
import { freePort } from '@simplebank/chassis/testing';

const RATE = Number(process.env.RATE ?? 200);
const DURATION_S = Number(process.env.DURATION_S ?? 30);
/** Seconds of load at RATE before the measured run, whose orders finish before the clock starts (0: none). */
const WARMUP_S = Number(process.env.WARMUP_S ?? 5);
/** Acceptance p50/p99 is also printed per window of this many seconds: where in the run the tail sits. */
const WINDOW_S = Number(process.env.WINDOW_S ?? 5);
const CUSTOMERS = Number(process.env.CUSTOMERS ?? 40);
/** Comma-separated services to profile (V8 CPU profiles in bench/place-order/profiles/, see cpu-profile.mjs). */
const PROFILE = (process.env.PROFILE ?? '').split(',').filter(Boolean);
/** Comma-separated services to run with `--perf-basic-prof`, so `perf record -p <pid>` can name JS functions. */
const PERF_MAP = (process.env.PERF_MAP ?? '').split(',').filter(Boolean);
/** PG_STATS=1: load pg_stat_statements and print the statements that took the server's time (diagnosis only). */
const PG_STATS = process.env.PG_STATS === '1';
const CPU_DETAIL = process.env.CPU_DETAIL === '1';
/** MONITOR=1: every 2 s, print each bus queue's backlog and each process's CPU share (stderr). */
const MONITOR = process.env.MONITOR === '1';
/** PG_SETTINGS=name=value,…: extra PostgreSQL settings for the run (to try one; quote only the bank's own defaults). */
const PG_SETTINGS = Object.fromEntries((process.env.PG_SETTINGS ?? '').split(',').filter(Boolean).map((kv) => kv.split('=') as [string, string]));
const SYMBOLS = ['AAPL', 'MSFT', 'GOOGL', 'AMZN', 'NVDA', 'META', 'TSLA', 'JPM'];

const bankServices = () => SERVICE_NAMES;

const pct = (sorted: number[], p: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN);

/** Each WINDOW_S window's p50/p99 (ms), in order: `windows[i]` holds the times of what was sent in window i (sorted here). */
const byWindow = (windows: number[][]): string =>
  windows.map((w) => (w.sort((a, b) => a - b), `${pct(w, 50).toFixed(0)}/${pct(w, 99).toFixed(0)}`)).join('  ');

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'simplebank-bench-'));
  const bank = await startBank({
    dataDir,
    ports: 'random',
    pgPort: await freePort(),
    quiet: true,
    readyTimeoutMs: 120_000,
    pgSettings: {
      ...PG_SETTINGS,
      ...(PG_STATS ? { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all', 'pg_stat_statements.track_planning': 'on' } : {}),
      ...(CPU_DETAIL ? { log_connections: 'on', log_disconnections: 'on', log_autovacuum_min_duration: '0' } : {}),
    },
    ...(process.env.BUS_URL ? { busUrl: process.env.BUS_URL } : {}),
    // The services log as `npm start` has them log (the chassis default, info: the exchange logs each order it takes
    // and ends), into the runner's log files; BENCH_LOG_LEVEL=warn measures without those lines.
    ...(process.env.BENCH_LOG_LEVEL ? { env: { LOG_LEVEL: process.env.BENCH_LOG_LEVEL } } : {}),
    serviceEnv: Object.fromEntries([
      ...PERF_MAP.map((name) => [name, { NODE_OPTIONS: '--perf-basic-prof-only-functions' }]),
      ...(process.env.PRELOAD ? bankServices().map((name) => [name, { NODE_OPTIONS: `--import=${process.env.PRELOAD}`, ELD_NAME: name }]) : []),
      ...PROFILE.map((name) => [
        name,
        {
          NODE_OPTIONS: `--import=${pathToFileURL(path.join(import.meta.dirname, 'cpu-profile.mjs')).href}`,
          CPU_PROFILE_DIR: path.join(import.meta.dirname, 'profiles'),
          CPU_PROFILE_NAME: name,
        },
      ]),
    ]),
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

    /**
     * Open loop: order n is sent at start + n/rate whatever happened to earlier ones. Returns each accepted order's
     * acceptance latency, also by the WINDOW_S window it was sent in.
     */
    const sendOrders = async (rate: number, seconds: number, keyPrefix: string) => {
      const latencies: number[] = [];
      const windows: number[][] = [];
      const errors: Record<string, number> = {};
      const placed: { customer: number; id: string }[] = [];
      const total = Math.round(rate * seconds);
      const start = performance.now();
      const inflight: Promise<void>[] = [];
      for (let n = 0; n < total; n++) {
        const due = start + (n * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        const c = n % CUSTOMERS;
        const customer = customers[c]!;
        const sent = performance.now();
        inflight.push(
          call('POST', '/orders', { accountId: customer.accountId, symbol: SYMBOLS[n % SYMBOLS.length], side: 'buy', quantity: 1, type: 'market' }, {
            authorization: `Bearer ${customer.token}`,
            'idempotency-key': `${keyPrefix}-${n}`,
          }).then(
            (res) => {
              if (res.status === 202) {
                const ms = performance.now() - sent;
                latencies.push(ms);
                (windows[Math.floor((sent - start) / (WINDOW_S * 1000))] ??= []).push(ms);
                placed.push({ customer: c, id: res.body.id });
              } else {
                // By status and problem code: the gateway's own shedding (`overloaded`) and a service behind it
                // shedding or failing (`upstream_unavailable`, `upstream_timeout`) are different stories.
                const key = `${res.status} ${(res.body as { code?: string } | undefined)?.code ?? ''}`.trim();
                errors[key] = (errors[key] ?? 0) + 1;
              }
            },
            (err: Error) => {
              errors[err.message] = (errors[err.message] ?? 0) + 1;
            },
          ),
        );
      }
      await Promise.all(inflight);
      const elapsed = (performance.now() - start) / 1000;
      latencies.sort((a, b) => a - b);
      return { latencies, byWindow: byWindow(windows), errors, placed, total, start, elapsed };
    };

    const ordersDb = new pg.Client({ connectionString: bank.databaseUrls.orders });
    await ordersDb.connect();
    /** Polls until no order is open (or 120 s pass); returns when that was seen. */
    const waitUntilFinal = async (): Promise<number> => {
      // Progress is read with one cheap count on the orders database (polling the API for thousands of orders
      // would load the very services being measured). A scan of the orders table (no index on status: see orders'
      // migration 003), a few thousand rows, 4 times a second.
      const deadline = Date.now() + 120_000;
      let seenAt = performance.now();
      while (Date.now() < deadline) {
        const { rows } = await ordersDb.query<{ open: string }>(
          `SELECT count(*) AS open FROM (SELECT 1 FROM orders WHERE status IN ('pending', 'accepted', 'placed') LIMIT 1) o`,
        );
        seenAt = performance.now();
        if (Number(rows[0]!.open) === 0) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      return seenAt;
    };

    if (WARMUP_S > 0) {
      // A bank that has just started runs its code cold (interpreted until V8 optimises it) and grows its connection
      // pools as load arrives; the first seconds measure that, not the bank at work. Load it at full rate for a few
      // seconds, let those orders finish, then start the clock. The warm-up's own figures are printed, not hidden.
      const warm = await sendOrders(RATE, WARMUP_S, `warmup-${Date.now()}`);
      await waitUntilFinal();
      process.stderr.write(
        `[bench] warm-up: ${warm.latencies.length} of ${warm.total} accepted in ${WARMUP_S} s, p50/p99 ${pct(warm.latencies, 50).toFixed(0)}/${pct(warm.latencies, 99).toFixed(0)} ms, errors ${JSON.stringify(warm.errors)}; by ${WINDOW_S} s window ${warm.byWindow}\n`,
      );
    }
    const cpuSnapshot = () => bankCpu(bank, dataDir, 'load');
    const admin = new pg.Client({ connectionString: bank.serverUrl });
    if (PG_STATS) {
      await admin.connect();
      await admin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
      await admin.query('SELECT pg_stat_statements_reset()');
      await admin.query('SELECT pg_stat_reset_shared(NULL)').catch(() => {});
      await admin.query(`SELECT pg_stat_reset()`);
    }
    const cpuBefore = await cpuSnapshot();
    const pgBefore = CPU_DETAIL ? await postgresCpuByKind(dataDir) : new Map<string, number>();
    process.stderr.write(`[bench] ${CUSTOMERS} customers ready; sending ${RATE} orders/s for ${DURATION_S} s from ${new Date().toISOString()}\n`);
    for (const name of bank.processes) process.stderr.write(`[bench] pid ${name} ${bank.supervisor.get(name).pid}\n`);

    let monitor: NodeJS.Timeout | undefined;
    let stopMonitor = async (): Promise<unknown> => undefined;
    if (MONITOR) {
      const bus = new pg.Client({ connectionString: bank.busUrl });
      bus.on('error', () => {});
      await bus.connect();
      stopMonitor = () => bus.end().catch(() => {});
      // A durable commit of one row, timed: how long the disk makes every business transaction wait.
      await bus.query('CREATE TABLE IF NOT EXISTS bench_commit_probe (at timestamptz)');
      let last = await cpuSnapshot();
      let lastAt = performance.now();
      const monitorStart = lastAt;
      // Time each service's main thread spent runnable but waiting for a CPU (/proc/<pid>/schedstat, 2nd field, ns).
      const waits = async () => {
        const out: Record<string, number> = {};
        for (const name of bank.processes) {
          const pid = bank.supervisor.get(name).pid;
          out[name] = Number((await readFile(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').catch(() => '0 0')).split(' ')[1]) / 1e9;
        }
        return out;
      };
      let lastWait = await waits();
      monitor = setInterval(() => {
        void (async () => {
          const { rows } = await bus.query<{ name: string; waiting: string; active: string }>(
            `SELECT name, count(*) FILTER (WHERE state < 'active') AS waiting, count(*) FILTER (WHERE state = 'active') AS active
               FROM pgboss.job WHERE state <= 'active' AND name NOT LIKE '%.dlq' GROUP BY name ORDER BY name`,
          );
          const probes: number[] = [];
          for (let i = 0; i < 5; i++) {
            const t0 = performance.now();
            await bus.query('INSERT INTO bench_commit_probe VALUES (now())');
            probes.push(performance.now() - t0);
          }
          probes.sort((a, b) => a - b);
          const now = await cpuSnapshot();
          const dt = (performance.now() - lastAt) / 1000;
          const wait = await waits();
          const cpu = Object.keys(now)
            .map((k) => `${k}=${Math.round((100 * (now[k]! - last[k]!)) / dt)}%${wait[k] !== undefined ? `(wait ${Math.round((100 * (wait[k]! - lastWait[k]!)) / dt)}%)` : ''}`)
            .join(' ');
          lastWait = wait;
          last = now;
          lastAt = performance.now();
          process.stderr.write(`[monitor ${((performance.now() - monitorStart) / 1000).toFixed(0)}s] ${rows.map((r) => `${r.name}:${r.waiting}/${r.active}`).join(' ')} | commit ${probes[2]!.toFixed(1)} ms | ${cpu}\n`);
        })().catch(() => {});
      }, 2000);
      monitor.unref();
    }
    const { latencies, byWindow: acceptance, errors, placed, total, start, elapsed } = await sendOrders(RATE, DURATION_S, `bench-${Date.now()}`);
    process.stderr.write(`[bench] acceptance by ${WINDOW_S} s window (p50/p99 ms): ${acceptance}\n`);
    const measured = new Set(placed.map((p) => p.id));

    // Wait until every accepted order is final; the time to fill is then read once through the API, from each
    // order's own history.
    const drainedAt = await waitUntilFinal();
    // Read before the saga-log query below, whose window over every step of the run is the benchmark's own work.
    const cpuAfter = await cpuSnapshot();
    const pgAfter = CPU_DETAIL ? await postgresCpuByKind(dataDir) : new Map<string, number>();
    try {
      if (CPU_DETAIL) {
        // Where an order's time went, from the saga log: gaps between consecutive steps, p50 / p99 in ms.
        const { rows } = await ordersDb.query<{ gap: string; p50: number; p99: number; n: string }>(
          `SELECT prev || ' → ' || step AS gap, count(*) AS n,
                  round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1)::float AS p50,
                  round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1)::float AS p99
             FROM (SELECT step, lag(step) OVER w AS prev, extract(epoch FROM at - lag(at) OVER w) * 1000 AS ms
                     FROM saga_log WINDOW w AS (PARTITION BY order_id ORDER BY id)) g
            WHERE prev IS NOT NULL GROUP BY 1 ORDER BY min(ms)`,
        );
        console.error('[bench] saga step gaps (ms):');
        console.error(rows.map((r) => `  ${r.gap.padEnd(26)} n=${r.n} p50=${r.p50} p99=${r.p99}`).join('\n'));
      }
    } finally {
      await ordersDb.end();
    }
    clearInterval(monitor);
    await stopMonitor();
    let pending = 0;
    // Each filled order's time to fill with the time it was submitted: a backlog that grows while the load lasts shows
    // as fill times that grow window after window; a bank that keeps up gives flat ones.
    const fills: { submittedAt: number; ms: number }[] = [];
    const finals: Record<string, number> = {};
    for (let c = 0; c < CUSTOMERS; c++) {
      const { body: orders } = await call('GET', `/orders?accountId=${customers[c]!.accountId}&limit=500`, undefined, { authorization: `Bearer ${customers[c]!.token}` });
      for (const o of orders as { id: string; status: string; history: { status: string; at: string }[] }[]) {
        if (!measured.has(o.id)) continue;
        if (!['filled', 'rejected', 'expired', 'cancelled'].includes(o.status)) pending++;
        else finals[o.status] = (finals[o.status] ?? 0) + 1;
        if (o.status === 'filled') {
          const at = (s: string) => Date.parse(o.history.find((h) => h.status === s)!.at);
          fills.push({ submittedAt: at('pending'), ms: at('filled') - at('pending') });
        }
      }
    }
    const fillTimes = fills.map((f) => f.ms).sort((a, b) => a - b);
    const firstSubmitted = Math.min(...fills.map((f) => f.submittedAt));
    const fillWindows: number[][] = [];
    for (const f of fills) (fillWindows[Math.floor((f.submittedAt - firstSubmitted) / (WINDOW_S * 1000))] ??= []).push(f.ms);
    process.stderr.write(`[bench] time to filled by ${WINDOW_S} s window of submission (p50/p99 ms): ${byWindow(fillWindows)}\n`);
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
      fillMaxMs: fillTimes.at(-1) ?? NaN,
      // From the first order sent until the last one was final.
      drainedAfterS: Number(((drainedAt - start) / 1000).toFixed(1)),
      // What the bank completed: every accepted order over the time until the last was final. Below rateTarget, the
      // saga's backlog grows for as long as the load lasts.
      completedPerS: Number((placed.length / ((drainedAt - start) / 1000)).toFixed(1)),
      errors,
      // CPU seconds each process used from the first order until every order was final, and per order in ms.
      cpuS: Object.fromEntries(Object.keys(cpuAfter).map((k) => [k, Number((cpuAfter[k]! - cpuBefore[k]!).toFixed(2))])),
      cpuMsPerOrder: Number(((Object.keys(cpuAfter).reduce((a, k) => a + cpuAfter[k]! - cpuBefore[k]!, 0) * 1000) / Math.max(1, placed.length)).toFixed(2)),
      bus: bank.busUrl.startsWith('nats') ? 'nats' : 'pg-boss',
      node: process.version,
    };
    console.log(JSON.stringify(result, null, 2));
    if (CPU_DETAIL) {
      // Connections opened and closed while the bank ran (each costs the server a fork and an authentication).
      const pgLog = await readFile(path.join(dataDir, 'postgres.log'), 'utf8').catch(() => '');
      const opened = new Map<string, number>();
      for (const m of pgLog.matchAll(/connection authorized: user=\S+ database=(\S+)(?: application_name=(\S+))?/g)) {
        const key = `${m[1]} ${m[2] ?? ''}`;
        opened.set(key, (opened.get(key) ?? 0) + 1);
      }
      console.table([...opened].map(([db, n]) => ({ db, opened: n })).sort((a, b) => b.opened - a.opened));
      console.log({ disconnections: [...pgLog.matchAll(/disconnection: session time/g)].length });
      // Autovacuum's workers are forked per run and exit, so their CPU is in 'postmaster+exited' below: per table.
      const vacuums = new Map<string, { runs: number; cpuS: number }>();
      for (const m of pgLog.matchAll(/automatic (?:vacuum|analyze) of table "([^"]+)"[\s\S]*?CPU: user: ([\d.]+) s, system: ([\d.]+) s/g)) {
        const v = vacuums.get(m[1]!) ?? { runs: 0, cpuS: 0 };
        v.runs++;
        v.cpuS += Number(m[2]) + Number(m[3]);
        vacuums.set(m[1]!, v);
      }
      console.table([...vacuums].map(([table, v]) => ({ table, runs: v.runs, cpuS: Number(v.cpuS.toFixed(2)) })).sort((a, b) => b.cpuS - a.cpuS).slice(0, 15));
      const rows = [...pgAfter].map(([kind, t]) => ({ kind, cpuS: Number((t - (pgBefore.get(kind) ?? 0)).toFixed(2)) })).sort((a, b) => b.cpuS - a.cpuS);
      console.table(rows);
    }
    if (PG_STATS) {
      const { rows } = await admin.query(
        `SELECT d.datname AS db, s.calls, round(s.total_exec_time)::int AS total_ms, round(s.total_plan_time)::int AS plan_ms, s.plans, round(s.mean_exec_time::numeric, 3) AS mean_ms,
                s.rows, s.shared_blks_hit + s.shared_blks_read AS blks, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 160) AS query
           FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
          ORDER BY s.total_exec_time + s.total_plan_time DESC LIMIT 40`,
      );
      console.table(rows);
      const perDb = await admin.query(
        `SELECT d.datname AS db, sum(s.calls)::int AS calls, round(sum(s.calls) / $1::numeric, 1) AS calls_per_order, round(sum(s.total_exec_time))::int AS total_ms, round(sum(s.total_plan_time))::int AS plan_ms, sum(s.plans)::int AS plans
           FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid GROUP BY d.datname ORDER BY 2 DESC`,
        [Math.max(1, placed.length)],
      );
      console.table(perDb.rows);
      // Transactions per order in each database (pg_stat_database counts the database it is run in only after
      // a reset there, so read every database's row from the admin connection).
      const xacts = await admin.query(
        `SELECT datname AS db, xact_commit AS commits, round(xact_commit / $1::numeric, 1) AS commits_per_order, xact_rollback AS rollbacks
           FROM pg_stat_database WHERE datname LIKE 'simplebank%' ORDER BY xact_commit DESC`,
        [Math.max(1, placed.length)],
      );
      console.table(xacts.rows);
      await admin.end();
    }
  } finally {
    await pool.close();
    await bank.stop();
    if (process.env.KEEP_DATA === '1') console.log(`[bench] data left in ${dataDir}`);
    else await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
