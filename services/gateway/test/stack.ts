import { startService, urlEnvName, type RunningService } from '@simplebank/chassis';
import { createTestDatabase, freePort, type TestDatabase } from '@simplebank/chassis/testing';

/**
 * Starts the real services behind the gateway, each on its own fresh database, all on one bus database, with
 * ports chosen up front so every service knows every other's URL whatever the start order. Services not asked
 * for still get a URL (nothing listens there): a call to them fails like a service that is down.
 */
const loaders = {
  customers: () => import('@simplebank/customers/service'),
  accounts: () => import('@simplebank/accounts/service'),
  'market-data': () => import('@simplebank/market-data/service'),
  fees: () => import('@simplebank/fees/service'),
  market: () => import('@simplebank/market/service'),
  orders: () => import('@simplebank/orders/service'),
  gateway: () => import('../src/service.ts'),
};
export type ServiceName = keyof typeof loaders;

export const SERVICE_TOKEN = 'test-token-0123456789';

// Per-service test settings: cheap password hashing; a fast price feed and exchange so orders move quickly.
const SETTINGS: Partial<Record<ServiceName, Record<string, string>>> = {
  customers: { SCRYPT_LOG_N: '12' },
  'market-data': { MARKET_DATA_TICK_MS: '200' },
  market: { EXCHANGE_HOURS: 'always', EXCHANGE_LATENCY_MS: '10', EXCHANGE_MATCH_INTERVAL_MS: '20' },
};

export interface Stack {
  url(name: ServiceName): string;
  running: Partial<Record<ServiceName, RunningService>>;
  stop(): Promise<void>;
}

export async function startStack(names: ServiceName[], extraEnv: Record<string, string> = {}): Promise<Stack> {
  const all = Object.keys(loaders) as ServiceName[];
  const ports = Object.fromEntries(await Promise.all(all.map(async (n) => [n, await freePort()] as const))) as Record<ServiceName, number>;
  const url = (n: ServiceName) => `http://127.0.0.1:${ports[n]}`;
  const databases: TestDatabase[] = [];
  const running: Partial<Record<ServiceName, RunningService>> = {};
  const busDb = await createTestDatabase('bus');
  databases.push(busDb);
  const shared: Record<string, string> = {
    BUS_URL: busDb.url,
    SERVICE_TOKEN,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...Object.fromEntries(all.map((n) => [urlEnvName(n), url(n)])),
  };

  const stop = async () => {
    // The gateway first, so nothing calls a service that is already gone; then the rest together.
    await running.gateway?.stop();
    await Promise.all(Object.entries(running).filter(([n]) => n !== 'gateway').map(([, r]) => r.stop()));
    await Promise.all(databases.map((d) => d.drop()));
  };

  try {
    // Dependencies before dependants, so a service never starts calling one that is still migrating.
    for (const name of all.filter((n) => names.includes(n))) {
      const { service } = await loaders[name]();
      const env: Record<string, string> = { ...shared, PORT: String(ports[name]), ...(SETTINGS[name] ?? {}), ...extraEnv };
      if ((service as { migrations?: URL }).migrations) {
        const db = await createTestDatabase(name.replace('-', '_'));
        databases.push(db);
        env.DATABASE_URL = db.url;
      }
      running[name] = await startService(service as Parameters<typeof startService>[0], env);
    }
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
  return { url, running, stop };
}
