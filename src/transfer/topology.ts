// Gathers, from the registry, everything planAttended needs to decide.
// This is the only asynchronous part of planning (registry reads and, for a
// Replaces dialog Asterisk did not resolve, the candidates' SIP tags).
import type { ChannelTransferEvent } from '../ari/models.js';
import type { PendingDials } from '../legs/pending-dials.js';
import type { CallRegistry } from '../registry/call-registry.js';
import { SharedRegistryUnavailable, type BridgeRecord, type ChannelRecord } from '../registry/types.js';
import { replacesDialog, type TopologySnapshot } from './attended-plan.js';

export async function gatherTopology(
  event: ChannelTransferEvent,
  registry: CallRegistry,
  pendingDials: PendingDials,
): Promise<TopologySnapshot> {
  const { store } = registry;
  const { channels, bridges, addLeg, addBridge } = snapshotReader(registry);
  await addLeg(event.referred_by.source_channel.id);
  // The transferer may have left already (a BYE right after the 202): the
  // bridge it sent the REFER from still holds its transferees.
  await addBridge(event.referred_by.bridge?.id);
  const resolved = event.refer_to.destination_channel;
  let callIdCandidates: ChannelRecord[] = [];
  let elsewhere: TopologySnapshot['elsewhere'];
  if (resolved) {
    await addLeg(resolved.id);
  } else {
    const dialog = replacesDialog(event);
    if (dialog) {
      const found = await store.channelsByCallId(dialog.callId);
      const needTags = dialog.fromTag !== undefined && dialog.toTag !== undefined;
      callIdCandidates = await Promise.all(
        found.map(async (c) => ({ ...c, dialogTags: needTags ? await registry.dialogTags(c.id) : c.dialogTags })),
      );
      await Promise.all(callIdCandidates.map((c) => addLeg(c.id)));
      for (const c of callIdCandidates) channels.set(c.id, c);
      // Only a dialog that is not here is looked for on the other nodes: the common case costs nothing.
      if (found.length === 0 && registry.otherNodes) elsewhere = await lookElsewhere(registry.otherNodes, dialog.callId);
    }
  }
  const ringingLegs = new Map<string, string>();
  for (const id of channels.keys()) {
    const leg = pendingDials.ringingLegOf(id);
    if (leg) ringingLegs.set(id, leg);
  }
  return { channels, bridges, callIdCandidates, ringingLegs, ...(elsewhere ? { elsewhere } : {}) };
}

async function lookElsewhere(otherNodes: NonNullable<CallRegistry['otherNodes']>, callId: string): Promise<TopologySnapshot['elsewhere']> {
  try {
    const found = await otherNodes.findOnOtherNodes(callId);
    return { found: found.map((r) => ({ node: r.node, channelId: r.channel.id, bridged: r.channel.bridgeId !== undefined })) };
  } catch (err) {
    if (err instanceof SharedRegistryUnavailable) return { unavailable: err.message };
    throw err;
  }
}

/** For the API: a channel, its bridge and everyone in it. */
export async function gatherAround(channelId: string, registry: CallRegistry): Promise<TopologySnapshot> {
  const { channels, bridges, addLeg } = snapshotReader(registry);
  await addLeg(channelId);
  return { channels, bridges, callIdCandidates: [], ringingLegs: new Map() };
}

/** Registry reads into one snapshot, each record read once. */
function snapshotReader({ store }: CallRegistry) {
  const channels = new Map<string, ChannelRecord>();
  const bridges = new Map<string, BridgeRecord>();
  const addChannel = async (id: string) => {
    if (channels.has(id)) return channels.get(id);
    const record = await store.getChannel(id);
    if (record) channels.set(id, record);
    return record;
  };
  // A bridge and everyone in it.
  const addBridge = async (id: string | undefined) => {
    if (!id || bridges.has(id)) return;
    const bridge = await store.getBridge(id);
    if (!bridge) return;
    bridges.set(bridge.id, bridge);
    await Promise.all(bridge.channelIds.map(addChannel));
  };
  const addLeg = async (id: string) => addBridge((await addChannel(id))?.bridgeId);
  return { channels, bridges, addChannel, addBridge, addLeg };
}
