import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isUpstreamError } from '../client/errors.ts';
import { sendProblem, serviceCredentialGuard } from '../protection/http-util.ts';
import type { Protection } from '../protection/protect.ts';
import type { ResiliencePipeline } from '../resilience/pipeline.ts';

export const RESILIENCE_ADMIN_PATH = '/admin/resilience';

export interface ResilienceAdminOptions {
  /** The pipelines of the service's dependencies, by dependency name. */
  pipelines: ReadonlyMap<string, ResiliencePipeline>;
  protection: Protection;
  serviceToken: string;
  log: { info(obj: object, msg: string): void };
}

/** An open circuit's `reason` is the error that opened it: shown by its code, never as the error itself. */
function reasonOf(reason: unknown): string | undefined {
  if (reason === undefined) return undefined;
  if (isUpstreamError(reason)) return reason.code;
  return reason instanceof Error ? reason.name : String(reason);
}

function statsOf(pipeline: ResiliencePipeline): Record<string, unknown> {
  const stats = pipeline.stats();
  const { breaker } = stats;
  return {
    ...stats,
    breaker: { ...breaker, ...('reason' in breaker ? { reason: reasonOf(breaker.reason) } : {}) },
    options: pipeline.options,
  };
}

/**
 * The operator's view of a service's resilience, service credential required (`x-service-token`):
 *
 * - `GET /admin/resilience`: per dependency the breaker state (and transitions), bulkhead gauges, retry budget and
 *   retry counters, and the options in force; plus load shedding, rate limit and fault counters;
 * - `POST /admin/resilience/:dependency/trip`: holds the dependency's circuit open (`isolated`) until reset;
 * - `POST /admin/resilience/:dependency/reset`: closes it and forgets its failure history.
 */
export function resilienceAdminRoutes(app: FastifyInstance, options: ResilienceAdminOptions): void {
  const { pipelines, protection, serviceToken, log } = options;
  const guard = serviceCredentialGuard(serviceToken);
  const pipelineOf = (request: FastifyRequest) => pipelines.get((request.params as { dependency: string }).dependency);

  app.get(RESILIENCE_ADMIN_PATH, { onRequest: guard }, async () => ({
    dependencies: Object.fromEntries([...pipelines].map(([name, p]) => [name, statsOf(p)])),
    protection: protection.stats(),
  }));

  for (const action of ['trip', 'reset'] as const) {
    app.post(`${RESILIENCE_ADMIN_PATH}/:dependency/${action}`, { onRequest: guard }, async (request, reply) => {
      const pipeline = pipelineOf(request);
      if (!pipeline) {
        const { dependency } = request.params as { dependency: string };
        return sendProblem(reply, request, 404, 'dependency_not_found', `no dependency ${dependency}; known: ${[...pipelines.keys()].join(', ') || 'none'}`);
      }
      pipeline.breaker[action]();
      log.info({ dependency: pipeline.dependency, action }, `circuit breaker ${action === 'trip' ? 'tripped' : 'reset'} by an operator`);
      return statsOf(pipeline);
    });
  }
}
