/**
 * Starts orders with the REAL services it calls (accounts, fees, market-data), each on its own fresh database,
 * all on one pg-boss bus database. The market is simulated by publishing its events onto the bus.
 * Orders reaches accounts through a small proxy the tests can hold or make fail, to stage races and outages.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient, createDb, type Client, createEnvelope, startService, type Db, type EventEnvelope, type RunningService } from '@simplebank/chassis';
import { createTestDatabase, recordEvents, type EventRecorder, type TestDatabase } from '@simplebank/chassis/testing';
import { accountsContract } from '@simplebank/accounts/contract';
import { service as accountsService } from '@simplebank/accounts/service';
import { feesContract } from '@simplebank/fees/contract';
import { service as feesService } from '@simplebank/fees/service';
import { service as marketDataService } from '@simplebank/market-data/service';
import { marketContract } from '@simplebank/market/contract';
import type { z } from 'zod';
import { ordersContract, type Order } from '../src/contract.ts';
import { service as ordersService } from '../src/service.ts';

export const SERVICE_TOKEN = 'test-token-0123456789';

export interface AccountsProxy {
  url: string;
  /** Requests seen, as `METHOD /path`. */
  seen: string[];
  /** Hold every request until `open()`. */
  hold(): void;
  open(): void;
  /** Answer the next `n` requests with 503 without forwarding them. */
  failNext(n: number): void;
  close(): Promise<void>;
}

async function startProxy(target: string): Promise<AccountsProxy> {
  let gate: Promise<void> | undefined;
  let release: (() => void) | undefined;
  let failures = 0;
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      seen.push(`${req.method} ${req.url}`);
      if (failures > 0) {
        failures--;
        res.writeHead(503, { 'content-type': 'application/problem+json' });
        res.end(JSON.stringify({ type: 'about:blank', title: 'Service Unavailable', status: 503, code: 'unavailable' }));
        return;
      }
      if (gate) await gate;
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v === 'string' && !['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive'].includes(k)) headers[k] = v;
      }
      try {
        const upstream = await fetch(`${target}${req.url}`, { method: req.method!, headers, ...(chunks.length ? { body: Buffer.concat(chunks) } : {}) });
        const body = Buffer.from(await upstream.arrayBuffer());
        res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
        res.end(body);
      } catch {
        res.destroy();
      }
    })();
  });
  function open() {
    release?.();
    gate = undefined;
    release = undefined;
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    hold() {
      gate ??= new Promise((r) => (release = r));
    },
    open,
    failNext(n) {
      failures = n;
    },
    async close() {
      open();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type MarketEvents = typeof marketContract.events;

export interface Bank {
  orders: RunningService;
  accountsProxy: AccountsProxy;
  accounts: Client<typeof accountsContract>;
  fees: Client<typeof feesContract>;
  ordersClient: Client<typeof ordersContract>;
  /** The orders database, to read the saga log. */
  ordersDb: Db;
  /** Every event orders published, as a subscriber on the bus got it, in publish order. */
  orderEvents: EventRecorder;
  /** Publishes a market event as the market service would. */
  market<K extends keyof MarketEvents>(name: K, data: z.input<MarketEvents[K]['data']>, envelope?: EventEnvelope): Promise<EventEnvelope>;
  stop(): Promise<void>;
}

export async function startBank(extraOrdersEnv: Record<string, string> = {}): Promise<Bank> {
  const databases: TestDatabase[] = [];
  const db = async (name: string) => {
    const d = await createTestDatabase(name);
    databases.push(d);
    return d;
  };
  const [accountsDb, feesDb, marketDataDb, ordersDbInfo, busDb] = await Promise.all([db('accounts'), db('fees'), db('market_data'), db('orders'), db('bus')]);
  const base = { PORT: '0', SERVICE_TOKEN, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent' };

  const running: RunningService[] = [];
  // One after the other: each service's bus start creates the shared pg-boss schema if needed.
  const accounts = await startService(accountsService, { ...base, DATABASE_URL: accountsDb.url, BUS_URL: busDb.url });
  running.push(accounts as RunningService);
  const fees = await startService(feesService, { ...base, DATABASE_URL: feesDb.url, BUS_URL: busDb.url });
  running.push(fees as RunningService);
  const marketData = await startService(marketDataService, { ...base, DATABASE_URL: marketDataDb.url });
  running.push(marketData as RunningService);
  const accountsProxy = await startProxy(accounts.url);
  const orderEvents = await recordEvents({ busUrl: busDb.url, name: 'orders-test.recorder', events: ordersContract.events });
  const orders = (await startService(ordersService, {
    ...base,
    DATABASE_URL: ordersDbInfo.url,
    BUS_URL: busDb.url,
    ACCOUNTS_URL: accountsProxy.url,
    FEES_URL: fees.url,
    MARKET_DATA_URL: marketData.url,
    ...extraOrdersEnv,
  })) as unknown as RunningService;
  running.push(orders);

  const ordersDb = createDb(ordersDbInfo.url, { max: 2 });
  const accountsClient = createClient(accountsContract, { baseUrl: accounts.url, serviceToken: SERVICE_TOKEN });
  const feesClient = createClient(feesContract, { baseUrl: fees.url, serviceToken: SERVICE_TOKEN });
  const ordersClient = createClient(ordersContract, { baseUrl: orders.url, serviceToken: SERVICE_TOKEN });

  return {
    orders,
    accountsProxy,
    accounts: accountsClient,
    fees: feesClient,
    ordersClient,
    ordersDb,
    orderEvents,
    async market(name, data, envelope) {
      const def = marketContract.events[name];
      const env = envelope ?? createEnvelope('market', { type: def.type, subject: (data as { orderId: string }).orderId, data: def.data.parse(data) });
      await orders.context.bus.publish(env);
      return env;
    },
    async stop() {
      await Promise.all([accountsClient.close(), feesClient.close(), ordersClient.close()]);
      for (const r of running.reverse()) await r.stop();
      await orderEvents.close();
      await accountsProxy.close();
      await ordersDb.close();
      for (const d of databases) await d.drop();
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `ok` holds; no timing assertions, only a generous ceiling so a broken saga fails the test. */
export async function eventually<T>(probe: () => Promise<T>, ok: (value: T) => boolean, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await probe();
    if (ok(last)) return last;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(last)}`);
}

export type { Order };
