// GET /healthz: the process is alive. GET /readyz: connected to ARI's events
// WebSocket and the registry synced since, so REFERs are being handled; with
// HA_MODE=active-standby it also says which of the pair this instance is.
import type { FastifyPluginAsync } from 'fastify';

export interface Readiness {
  /** Why the service is not ready, or undefined when it is. */
  readonly notReadyReason: string | undefined;
  /** With HA_MODE=active-standby: active or standby. */
  readonly role?: string | undefined;
}

export interface HealthRoutesOptions {
  service: Readiness;
}

export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, { service }) => {
  app.get('/healthz', { config: { public: true } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { config: { public: true } }, async (_request, reply) => {
    const reason = service.notReadyReason;
    const role = service.role === undefined ? {} : { role: service.role };
    if (reason === undefined) return { status: 'ready', ...role };
    return reply.code(503).send({ status: 'not ready', ...role, reason });
  });
};
