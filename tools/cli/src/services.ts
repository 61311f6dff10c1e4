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
  /**
   * Runs as two processes: the service's own serves requests only (SERVICE_ROLE=api) and `<name>-worker`, on this
   * port, takes its event deliveries, outbox relay and background work (SERVICE_ROLE=worker). For a service whose
   * background work is heavy enough that requests would queue behind it in one event loop (orders and its saga).
   */
  worker?: { port: number };
  /**
   * All its work is asynchronous, or done for asynchronous work (market: events and timers, its routes for operators;
   * fees: called by the orders saga alone): it runs at WORKER_NICE.
   */
  background?: true;
}

export const SERVICES = [
  { name: 'gateway', port: 8080, urlEnv: 'GATEWAY_URL', database: undefined },
  { name: 'customers', port: 8081, urlEnv: 'CUSTOMERS_URL', database: 'simplebank_customers' },
  { name: 'accounts', port: 8082, urlEnv: 'ACCOUNTS_URL', database: 'simplebank_accounts' },
  { name: 'orders', port: 8083, urlEnv: 'ORDERS_URL', database: 'simplebank_orders', worker: { port: 8087 } },
  { name: 'market', port: 8084, urlEnv: 'MARKET_URL', database: 'simplebank_market', background: true },
  { name: 'market-data', port: 8085, urlEnv: 'MARKET_DATA_URL', database: 'simplebank_market_data' },
  { name: 'fees', port: 8086, urlEnv: 'FEES_URL', database: 'simplebank_fees', background: true },
] as const satisfies readonly ServiceInfo[];

export type ServiceName = (typeof SERVICES)[number]['name'];

export const SERVICE_NAMES: ServiceName[] = SERVICES.map((s) => s.name);

/** One process the runner starts: a service's own (its requests, and all its work unless it has a worker) or its worker. */
export interface ProcessInfo {
  /** The service's name for its own process, `<service>-worker` for its worker. */
  name: string;
  service: ServiceName;
  role: 'all' | 'api' | 'worker';
  port: number;
  /** Scheduling niceness (supervisor.ts): WORKER_NICE for a worker or a background service, 0 for the rest. */
  nice: number;
}

/**
 * A worker's niceness. Its work is asynchronous (an order waits in \`accepted\` a moment longer; no caller waits on a
 * socket), a request's is not: when both want the CPU, requests go first, and the worker takes what they leave. On
 * a machine with CPU to spare it changes nothing. (docs/architecture.md, *API and worker processes*.)
 */
export const WORKER_NICE = 19;

/** The processes that run these services, each service's own first and then its worker. */
export function processesOf(services: readonly ServiceName[]): ProcessInfo[] {
  return services.flatMap((name): ProcessInfo[] => {
    const info: ServiceInfo = serviceInfo(name);
    if (!info.worker) return [{ name, service: name, role: 'all', port: info.port, nice: info.background ? WORKER_NICE : 0 }];
    return [
      { name, service: name, role: 'api', port: info.port, nice: 0 },
      { name: `${name}-worker`, service: name, role: 'worker', port: info.worker.port, nice: WORKER_NICE },
    ];
  });
}

/** The event bus's database (pg-boss), shared by all services. */
export const BUS_DATABASE = 'simplebank_bus';

export const HOST = '127.0.0.1';

export function serviceInfo(name: string): ServiceInfo {
  const info = SERVICES.find((s) => s.name === name);
  if (!info) throw new Error(`unknown service: ${name} (known: ${SERVICE_NAMES.join(', ')})`);
  return info;
}

/** Every process of a whole bank, by name: what `logs`, `status`, `fault` and `dlq` can address. */
export const PROCESSES: readonly ProcessInfo[] = processesOf(SERVICE_NAMES);
export const PROCESS_NAMES: readonly string[] = PROCESSES.map((p) => p.name);
