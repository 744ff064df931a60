// GET /metrics: the Prometheus text exposition of the service's registry.
import type { FastifyPluginAsync } from 'fastify';
import type { Metrics } from '../../metrics.js';

export interface MetricsRoutesOptions {
  metrics: Pick<Metrics, 'text' | 'contentType'>;
}

export const metricsRoutes: FastifyPluginAsync<MetricsRoutesOptions> = async (app, { metrics }) => {
  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.text();
    return reply.type(metrics.contentType).send(text);
  });
};
