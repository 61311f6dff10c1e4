import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { defineContract, defineService, RESILIENCE_DEFAULTS, route } from '@simplebank/chassis';

/**
 * The smallest useful call: a path parameter in, a small JSON object out. Anything heavier would hide the
 * per-call cost of the chassis (validation, context, headers, response parsing) behind the work itself.
 */
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

/**
 * A stateless chassis service: started by startService as a real one is (its switches deciding what is on), or as the
 * chassis core (every switch off).
 */
export const echoService = defineService({
  contract: echoContract,
  defaultPort: 0,
  setup: () => ({
    routes: {
      echo: async ({ params }) => ({ status: 200 as const, body: { id: params.id, ok: true } }),
    },
    extend: (app) => app.get(CPU_PATH, async () => cpuReport()),
  }),
});

/**
 * Each server reports its own CPU time here, so the load process can charge CPU per call to each side.
 * Throughput on a shared 2-core machine swings with the neighbours' load; CPU per call barely does.
 */
export const CPU_PATH = '/__bench/cpu';

export interface CpuReport {
  user: number;
  system: number;
  /**
   * µs the main thread was ready to run but waited for a CPU (run-queue delay, /proc/self/schedstat): neighbours
   * on its pinned core. A round where either side waited much is a round the machine, not the code, decided.
   */
  waitUs: number;
}

export function cpuReport(): CpuReport {
  let waitUs = 0;
  try {
    waitUs = Number(readFileSync('/proc/self/schedstat', 'utf8').split(' ')[1]) / 1000 || 0;
  } catch {
    // not Linux: no run-queue figure
  }
  return { ...process.cpuUsage(), waitUs };
}

/** Keep-alive connections of the bare undici Pool: the chassis client's default, so only the code differs. */
export const CONNECTIONS = RESILIENCE_DEFAULTS.connections;
