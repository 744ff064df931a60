// Transfers started from software (an agent's desktop, a bot): POST
// /transfers, then for attended ones POST /transfers/{id}/complete or
// /cancel; GET /transfers/{id} follows any transfer. The same state
// machine, policy, webhooks, metrics and history as a phone's REFER; no
// sipfrag (no phone asked). The JSON schemas here are also what
// /openapi.json publishes.
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { checkDestination } from '../../destination-syntax.js';
import type { ApiRefusal, ApiTransferRequest } from '../../transfer/api-plan.js';
import type { TransferHistory } from '../../transfer/history.js';
import type { TransferCommand, TransferState } from '../../transfer/machine.js';

/** What the routes ask of the transfer handler. */
export interface TransferApi {
  startFromApi(req: ApiTransferRequest): Promise<{ transferId: string } | ApiRefusal>;
  command(transferId: string, command: TransferCommand): { state: TransferState } | ApiRefusal;
  stateOf(transferId: string): TransferState | undefined;
}

export interface TransferApiRoutesOptions {
  transfers: TransferApi;
  history: Pick<TransferHistory, 'get'>;
}

interface StartBody {
  kind: 'blind' | 'attended';
  channelId: string;
  destination: string;
  timeout?: number;
  variables?: Record<string, string>;
  callerId?: string;
}

const error = {
  type: 'object',
  properties: { statusCode: { type: 'integer' }, code: { type: 'string' }, error: { type: 'string' }, message: { type: 'string' } },
} as const;

const startBody = {
  type: 'object',
  required: ['kind', 'channelId', 'destination'],
  additionalProperties: false,
  properties: {
    kind: { type: 'string', enum: ['blind', 'attended'], description: 'blind: the transferees get a new call to the destination; attended: the transferer consults it first, then completes or cancels' },
    channelId: { type: 'string', minLength: 1, maxLength: 128, description: "The transferer's channel id (ARI); whoever shares its bridge is transferred" },
    destination: { type: 'string', minLength: 1, maxLength: 32, description: 'What to dial, through TRANSFER_DIAL_TEMPLATE: digits, letters, + * # _ . -' },
    timeout: { type: 'number', minimum: 0.1, maximum: 600, description: 'Seconds the new call may ring (default TRANSFER_TIMEOUT)' },
    variables: {
      type: 'object',
      maxProperties: 32,
      additionalProperties: { type: 'string', maxLength: 1024 },
      description: 'Channel variables set on the new call, on top of TRANSFER_CHANNEL_VARS',
    },
    callerId: { type: 'string', maxLength: 128, pattern: '^[^\\u0000-\\u001f]*$', description: 'Caller id of the new call, e.g. "Support" <5000> (default TRANSFER_CALLER_ID)' },
  },
} as const;

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } } as const;

const commandResponse = {
  200: { type: 'object', properties: { transferId: { type: 'string' }, command: { type: 'string' }, state: { type: 'string' } } },
  404: error,
  409: error,
};

export const transferApiRoutes: FastifyPluginAsync<TransferApiRoutesOptions> = async (app, { transfers, history }) => {
  app.post<{ Body: StartBody }>(
    '/transfers',
    {
      schema: {
        summary: 'Start a transfer',
        body: startBody,
        response: {
          202: { type: 'object', properties: { transferId: { type: 'string' }, state: { type: 'string' }, href: { type: 'string' } } },
          400: error,
          404: error,
          409: error,
          503: error,
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const syntax = checkDestination(body.destination);
      if (!syntax.allowed) return badRequest(reply, 'ERR_BAD_DESTINATION', syntax.detail);
      const dial = {
        ...(body.timeout !== undefined ? { timeoutMs: Math.round(body.timeout * 1000) } : {}),
        ...(body.variables !== undefined ? { variables: body.variables } : {}),
        ...(body.callerId !== undefined ? { callerId: body.callerId } : {}),
      };
      const started = await transfers.startFromApi({
        kind: body.kind,
        channelId: body.channelId,
        destination: body.destination,
        ...(Object.keys(dial).length > 0 ? { dial } : {}),
      });
      if ('status' in started) return refuse(reply, started);
      const href = `/transfers/${started.transferId}`;
      return reply.code(202).header('location', href).send({ transferId: started.transferId, state: transfers.stateOf(started.transferId) ?? 'finished', href });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/transfers/:id',
    { schema: { summary: 'A transfer in flight or recently finished, with its steps', params: idParams, response: { 404: error } } },
    async (request, reply) => {
      const { id } = request.params;
      const view = history.get(id);
      if (!view) return refuse(reply, { status: 404, code: 'ERR_TRANSFER_NOT_FOUND', message: `no transfer ${id} in flight or in the last TRANSFER_HISTORY_SIZE finished` });
      return { ...view, state: 'result' in view ? view.result : (transfers.stateOf(id) ?? 'finishing') };
    },
  );

  for (const command of ['complete', 'cancel'] as const) {
    app.post<{ Params: { id: string } }>(
      `/transfers/:id/${command}`,
      {
        schema: {
          summary: command === 'complete' ? 'Complete an attended transfer: the target joins the transferees, the transferer leaves' : 'Cancel an attended transfer: the transferer goes back to the transferees',
          params: idParams,
          response: commandResponse,
        },
      },
      async (request, reply) => {
        const done = transfers.command(request.params.id, command);
        if ('status' in done) return refuse(reply, done);
        return { transferId: request.params.id, command, state: done.state };
      },
    );
  }
};

const PHRASE: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found', 409: 'Conflict', 503: 'Service Unavailable' };

function refuse(reply: FastifyReply, r: ApiRefusal): FastifyReply {
  return reply.code(r.status).send({ statusCode: r.status, code: r.code, error: PHRASE[r.status], message: r.message });
}

function badRequest(reply: FastifyReply, code: string, message: string): FastifyReply {
  return reply.code(400).send({ statusCode: 400, code, error: PHRASE[400], message });
}
