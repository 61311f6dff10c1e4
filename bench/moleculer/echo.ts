// The call both stacks make: a path/param `id` in, `{ id, ok: true }` out, validated on the way in.
// Chassis: a contract + a service started with startService (bench/lib/chassis.ts). Moleculer: an `echo` service with an `echo` action
// (fastest-validator on the params, Moleculer's default), and the broker options for "features on" and "off".
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { z } from 'zod';
import type { BrokerOptions, ServiceSchema } from 'moleculer';
import { defineContract, defineService, route } from '@simplebank/chassis';
import type { WiredOptions } from '../lib/chassis.ts';

export const echoContract = defineContract({
  service: 'echo',
  routes: {
    echo: route({
      method: 'GET',
      path: '/echo/:id',
      params: z.object({ id: z.string().min(1).max(64) }),
      responses: { 200: z.object({ id: z.string(), ok: z.boolean() }) },
    }),
  },
});

/** Each server reports its own CPU time here (chassis) or through the `echo.cpu` action (Moleculer). */
export const CPU_PATH = '/__bench/cpu';

export interface ProcessStats {
  /** CPU time used (user + system, all threads), µs. */
  cpuUs: number;
  /**
   * Time the main thread was ready to run but waited for a CPU (run-queue delay, /proc/self/schedstat), ns: what
   * other processes on this shared machine took from this one. 0 where the kernel does not report it.
   */
  runQueueNs: number;
}

export function processStats(): ProcessStats {
  const u = process.cpuUsage();
  let runQueueNs = 0;
  try {
    runQueueNs = Number(readFileSync('/proc/self/schedstat', 'utf8').split(' ')[1]) || 0;
  } catch {
    runQueueNs = 0;
  }
  return { cpuUs: u.user + u.system, runQueueNs };
}

export const echoService = defineService({
  contract: echoContract,
  defaultPort: 0,
  setup: () => ({
    routes: { echo: async ({ params }) => ({ status: 200 as const, body: { id: params.id, ok: true } }) },
    extend: (app) => app.get(CPU_PATH, async () => processStats()),
  }),
});

export const echoSchema: ServiceSchema = {
  name: 'echo',
  actions: {
    echo: {
      params: { id: { type: 'string', min: 1, max: 64 } },
      handler(ctx): { id: string; ok: boolean } {
        return { id: (ctx.params as { id: string }).id, ok: true };
      },
    },
    cpu: { handler: () => processStats() },
  },
};

/** What bench/moleculer measures (load.ts says what each is). */
export const VARIANTS = ['fastify-bare', 'chassis-bare', 'chassis-full', 'chassis-full-socket', 'moleculer-full', 'moleculer-bare'] as const;
export type Variant = (typeof VARIANTS)[number];

export type Transport = 'tcp' | 'nats';
export const NATS_URL = 'nats://127.0.0.1:4222';

/**
 * The chassis side of `chassis-full`, callee and caller: what startService gives every service by default — the
 * resilience pipeline on the caller's dependency, load shedding, metrics, tracing at 100 % (in-memory ring).
 */
export const CHASSIS_FULL: WiredOptions = { resilience: true, protection: true, metrics: true, tracing: true };

/**
 * The Moleculer equivalents of the chassis client pipeline, set like the chassis defaults (docs/resilience.md):
 * per-request timeout 5 s; 3 attempts in total with exponential backoff from 50 ms; a breaker opening above 50 %
 * failures over 10 s once 20 requests were seen, half-open after 5 s; a bulkhead of 64 in flight + 64 queued.
 * Plus metrics (every request counted and timed; Prometheus reporter listening on 127.0.0.1, not scraped during the
 * run) and tracing (every call a span on both sides, sampled 100 %, Event exporter batching finished spans every 5 s:
 * the cheapest exporter that really exports), as the chassis side has its own on (CHASSIS_FULL).
 */
export const MOLECULER_FEATURE_NAMES = ['timeout', 'retry', 'breaker', 'bulkhead', 'metrics', 'tracing'] as const;
type Feature = (typeof MOLECULER_FEATURE_NAMES)[number];

/**
 * The features switched on in the "full" brokers: all of them, unless MOLECULER_FEATURES (a comma-separated subset
 * of MOLECULER_FEATURE_NAMES) says otherwise — for attributing Moleculer's cost, not for the headline figures.
 */
export function enabledFeatures(env: Record<string, string | undefined> = process.env): Set<Feature> {
  const given = env.MOLECULER_FEATURES?.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = given?.filter((f) => !(MOLECULER_FEATURE_NAMES as readonly string[]).includes(f));
  if (unknown?.length) throw new Error(`unknown MOLECULER_FEATURES: ${unknown.join(', ')}`);
  return new Set((given ?? MOLECULER_FEATURE_NAMES) as Feature[]);
}

export const moleculerFeatures = (metricsPort: number, on: Set<Feature> = enabledFeatures()): BrokerOptions => ({
  ...(on.has('timeout') ? { requestTimeout: 5_000 } : {}),
  ...(on.has('retry') ? { retryPolicy: { enabled: true, retries: 2, delay: 50, maxDelay: 1_000, factor: 2 } } : {}),
  ...(on.has('breaker') ? { circuitBreaker: { enabled: true, threshold: 0.5, windowTime: 10, minRequestCount: 20, halfOpenTime: 5_000 } } : {}),
  // Moleculer's bulkhead guards local actions, i.e. it acts in the callee; the option is set on both brokers.
  ...(on.has('bulkhead') ? { bulkhead: { enabled: true, concurrency: 64, maxQueueSize: 64 } } : {}),
  // A fixed port: with port 0 the reporter would drop `host` and listen on every interface.
  ...(on.has('metrics') ? { metrics: { enabled: true, reporter: [{ type: 'Prometheus', options: { host: '127.0.0.1', port: metricsPort } }] } } : {}),
  ...(on.has('tracing') ? { tracing: { enabled: true, sampling: { rate: 1 }, exporter: [{ type: 'Event', options: { interval: 5 } }] } } : {}),
});

/** A free TCP port on 127.0.0.1 (asked of the OS, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A broker on the chosen transporter, loopback only. TCP: UDP discovery off (it would multicast), the peer named
 * by a static `host:port/nodeID` URL; the other side learns this node's address from the incoming connection.
 * `namespace` keeps the subjects of this run apart from anything else using the same NATS server.
 */
export async function brokerOptions(o: { nodeID: string; namespace: string; transport: Transport; features: boolean; tcpPort?: number; peers?: string[] }): Promise<BrokerOptions> {
  return {
    nodeID: o.nodeID,
    namespace: o.namespace,
    logger: { type: 'Console', options: { level: 'warn' } },
    transporter:
      o.transport === 'nats'
        ? { type: 'NATS', options: { url: NATS_URL } }
        : { type: 'TCP', options: { udpDiscovery: false, port: o.tcpPort ?? 0, urls: (o.peers ?? []).join(',') } },
    ...(o.features ? moleculerFeatures(await freePort()) : {}),
  };
}
