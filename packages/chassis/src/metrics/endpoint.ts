import type { FastifyInstance } from 'fastify';
import type { ServiceMetrics } from './registry.ts';

export const METRICS_PATH = '/metrics';

/**
 * `GET /metrics`: the service's registry in the Prometheus text format, for Prometheus to scrape. No credential:
 * metrics carry no secrets nor personal data (labels are route templates, dependency and subscription names, never
 * ids), and scrapers are infrastructure. Left out of the route metrics, of load shedding and rate limits (infra
 * path), and of the access log (`config.accessLog: false`), so a scrape every few seconds is not news.
 */
export function metricsRoute(app: FastifyInstance, metrics: ServiceMetrics): void {
  app.get(METRICS_PATH, { config: { accessLog: false } }, async (_request, reply) => {
    const { contentType, body } = await metrics.scrape();
    return reply.type(contentType).send(body);
  });
}
