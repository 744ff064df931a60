// GET /transfers: the transfers in flight, step by step, and the last
// TRANSFER_HISTORY_SIZE finished ones (most recent first).
import type { FastifyPluginAsync } from 'fastify';
import type { TransferHistory } from '../../transfer/history.js';

export interface TransfersRoutesOptions {
  history: Pick<TransferHistory, 'inFlight' | 'finished'>;
}

export const transfersRoutes: FastifyPluginAsync<TransfersRoutesOptions> = async (app, { history }) => {
  app.get('/transfers', async () => ({ inFlight: history.inFlight(), finished: history.finished() }));
};
