// The HTTP API as a fastify instance, not yet listening (tests can inject).
// Routes: /healthz, /readyz and /openapi.json (always open), /metrics, /calls,
// /transfers and the transfer API, the live page / and its /live feed (behind
// HTTP_TOKEN when it is set). Fastify logs through our logger, at warn or
// above, and never logs requests (nor their Authorization header).
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { HttpConfig } from '../config.js';
import type { Logger } from '../logger.js';
import type { TransferHistory } from '../transfer/history.js';
import { tokenAuth } from './auth.js';
import { callsRoutes, type CallsRoutesOptions } from './routes/calls.js';
import { healthRoutes, type Readiness } from './routes/health.js';
import { liveRoutes, type LiveRoutesOptions } from './routes/live.js';
import { metricsRoutes, type MetricsRoutesOptions } from './routes/metrics.js';
import { pageRoutes } from './routes/page.js';
import { transfersRoutes, type TransfersRoutesOptions } from './routes/transfers.js';
import { transferApiRoutes, type TransferApi } from './routes/transfer-api.js';
import { openApiRoutes } from './routes/openapi.js';

/**
 * What the routes read from the running service, which main.ts hands in.
 * Described here, not taken from service.ts, so that http/ never imports it.
 */
export interface HttpService extends Readiness {
  readonly registry: { readonly store: CallsRoutesOptions['store'] };
  readonly metrics: MetricsRoutesOptions['metrics'];
  readonly history: TransfersRoutesOptions['history'] & LiveRoutesOptions['history'] & Pick<TransferHistory, 'get'>;
  readonly transfers: TransferApi;
}

export interface HttpAppOptions {
  service: HttpService;
  config: Pick<HttpConfig, 'token'>;
  logger: Logger;
}

export function buildHttpApp({ service, config, logger }: HttpAppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: httpLogger(logger) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    // The largest body is POST /transfers with its channel variables.
    bodyLimit: 64 * 1024,
    // A field the API does not know is refused (400), not silently dropped; no type is coerced.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
    forceCloseConnections: 'idle',
  });

  // Before the routes, so that it applies to every one of them (and to 404s).
  if (config.token) app.addHook('onRequest', tokenAuth(config.token));

  // First: it records every route registered after it.
  app.register(openApiRoutes);
  app.register(healthRoutes, { service });
  app.register(metricsRoutes, { metrics: service.metrics });
  app.register(callsRoutes, { store: service.registry.store });
  app.register(transfersRoutes, { history: service.history });
  app.register(transferApiRoutes, { transfers: service.transfers, history: service.history });
  app.register(pageRoutes);
  app.register(liveRoutes, { history: service.history, store: service.registry.store });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no route ${request.method} ${request.url.split('?')[0]}` });
  });
  return app;
}

// Fastify's own lines at warn and above (server errors, 5xx), and never
// more verbose than the process's own LOG_LEVEL.
function httpLogger(logger: Logger): Logger {
  const level = logger.levelVal > logger.levels.values.warn! ? logger.level : 'warn';
  return logger.child({ component: 'http' }, { level });
}
