// Planning a transfer asked for through the API (POST /transfers): a pure
// function of the request and a registry snapshot, as blind-plan.ts is for
// a REFER. The channel named is the transferer; whoever shares its bridge
// is transferred. Refusals carry the HTTP status and a code the caller can
// act on.
import type { TopologySnapshot } from './attended-plan.js';
import type { TransferKind } from './kinds.js';
import { TransferState, type DialOverrides, type Transfer } from './machine.js';

export interface ApiTransferRequest {
  kind: TransferKind;
  /** The transferer's channel. */
  channelId: string;
  destination: string;
  /** How the new call is dialled, instead of TRANSFER_TIMEOUT, TRANSFER_CHANNEL_VARS (added to them) and TRANSFER_CALLER_ID. */
  dial?: DialOverrides;
}

export interface ApiRefusal {
  status: 404 | 409 | 503;
  code: string;
  message: string;
}

export type ApiPlanResult = { ok: true; from: Transfer; bridgeIds: string[] } | ({ ok: false } & ApiRefusal);

export function planApiTransfer(req: ApiTransferRequest, transferId: string, topo: TopologySnapshot): ApiPlanResult {
  const source = topo.channels.get(req.channelId);
  if (!source || source.hangingUp) return refuse(404, 'ERR_CHANNEL_NOT_FOUND', `no channel ${req.channelId} (or it is hanging up)`);
  const bridge = source.bridgeId === undefined ? undefined : topo.bridges.get(source.bridgeId);
  if (!bridge) return refuse(409, 'ERR_CHANNEL_NOT_BRIDGED', `channel ${req.channelId} is in no call (no bridge) to transfer`);
  const transfereeIds = bridge.channelIds.filter((id) => id !== req.channelId && topo.channels.get(id)?.hangingUp === false);
  if (transfereeIds.length === 0) return refuse(409, 'ERR_NO_TRANSFEREE', `nobody else is in channel ${req.channelId}'s bridge ${bridge.id}`);
  const common = { sourceId: req.channelId, sourceBridgeId: bridge.id, transfereeIds, destination: req.destination, ...(req.dial ? { dial: req.dial } : {}) };
  if (req.kind === 'blind') {
    return { ok: true, from: { state: TransferState.Checking, leg: { ...common, busyIsDecline: true } }, bridgeIds: [bridge.id] };
  }
  const consultBridgeId = `consult-${transferId}`;
  return { ok: true, from: { state: TransferState.Consulting, consult: { ...common, consultBridgeId } }, bridgeIds: [bridge.id, consultBridgeId] };
}

function refuse(status: ApiRefusal['status'], code: string, message: string): ApiPlanResult {
  return { ok: false, status, code, message };
}
