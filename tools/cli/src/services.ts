/**
 * The bank's services as the local runner knows them: default port, the env var peers use to find it,
 * and its own database (none for the stateless gateway). Adding a service = one line here.
 */
export interface ServiceInfo {
  name: string;
  port: number;
  /** Env var through which every service learns this one's base URL. */
  urlEnv: string;
  /** Database name before any prefix; undefined = stateless. */
  database: string | undefined;
}

export const SERVICES = [
  { name: 'gateway', port: 8080, urlEnv: 'GATEWAY_URL', database: undefined },
  { name: 'customers', port: 8081, urlEnv: 'CUSTOMERS_URL', database: 'simplebank_customers' },
  { name: 'accounts', port: 8082, urlEnv: 'ACCOUNTS_URL', database: 'simplebank_accounts' },
  { name: 'orders', port: 8083, urlEnv: 'ORDERS_URL', database: 'simplebank_orders' },
  { name: 'market', port: 8084, urlEnv: 'MARKET_URL', database: 'simplebank_market' },
  { name: 'market-data', port: 8085, urlEnv: 'MARKET_DATA_URL', database: 'simplebank_market_data' },
  { name: 'fees', port: 8086, urlEnv: 'FEES_URL', database: 'simplebank_fees' },
] as const satisfies readonly ServiceInfo[];

export type ServiceName = (typeof SERVICES)[number]['name'];

export const SERVICE_NAMES: ServiceName[] = SERVICES.map((s) => s.name);

/** The event bus's database (pg-boss), shared by all services. */
export const BUS_DATABASE = 'simplebank_bus';

export const HOST = '127.0.0.1';

export function serviceInfo(name: string): ServiceInfo {
  const info = SERVICES.find((s) => s.name === name);
  if (!info) throw new Error(`unknown service: ${name} (known: ${SERVICE_NAMES.join(', ')})`);
  return info;
}

export function isServiceName(name: string): name is ServiceName {
  return SERVICES.some((s) => s.name === name);
}
