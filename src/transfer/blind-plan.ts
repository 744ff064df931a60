// Planning a blind transfer: a pure function of the event and a registry
// snapshot. The transferer S leaves; whoever shares its bridge (the
// transferees) gets a new leg to the destination once it answers.
//
//   P(S) --- BS --- S      =>      P(S) --- BS --- new leg;  S hung up
//
// S may already be gone: phones often hang up right after the 202. Its
// bridge is then the one the event saw it in.
import type { ChannelTransferEvent } from '../ari/models.js';
import type { ChannelRecord } from '../registry/types.js';
import type { TopologySnapshot } from './attended-plan.js';

export type BlindRejectionReason = 'no-destination' | 'source-not-bridged' | 'no-transferee';

export interface BlindPlan {
  ok: true;
  destination: string;
  sourceId: string;
  sourceBridgeId: string;
  transfereeIds: string[];
  /** S hung up after sending the REFER. */
  transfererGone: boolean;
}

export type BlindPlanResult = BlindPlan | { ok: false; reason: BlindRejectionReason; detail: string };

export function planBlind(event: ChannelTransferEvent, topo: TopologySnapshot): BlindPlanResult {
  const destination = event.refer_to.requested_destination.destination ?? '';
  if (!destination) return { ok: false, reason: 'no-destination', detail: 'the REFER names no destination' };
  const sourceId = event.referred_by.source_channel.id;
  const source = topo.channels.get(sourceId);
  const transfererGone = !isLive(source);
  const bridgeId = source?.bridgeId ?? (transfererGone ? event.referred_by.bridge?.id : undefined);
  const bridge = bridgeId ? topo.bridges.get(bridgeId) : undefined;
  if (!bridge) return { ok: false, reason: 'source-not-bridged', detail: `transferer channel ${sourceId} is in no bridge` };
  const transfereeIds = bridge.channelIds.filter((id) => id !== sourceId && isLive(topo.channels.get(id)));
  if (transfereeIds.length === 0) {
    return { ok: false, reason: 'no-transferee', detail: `nobody left with the transferer in bridge ${bridge.id}` };
  }
  return { ok: true, destination, sourceId, sourceBridgeId: bridge.id, transfereeIds, transfererGone };
}

function isLive(c: ChannelRecord | undefined): boolean {
  return c !== undefined && !c.hangingUp;
}
