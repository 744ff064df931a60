// Planning an attended transfer: a pure function of the ChannelTransfer
// event and a snapshot of the registry. No I/O here, so every branch can be
// tested exhaustively; transfer-executor.ts carries the plan out.
//
// The phone owns two legs: the source S (the REFER arrived on it) and the
// replaced leg R (named by Replaces). Their peers must end up talking:
//
//   P(S) --- BS --- S          P(S) --- BR --- P(R)
//   P(R) --- BR --- R    =>    S, R hung up; BS deleted
//
// One addChannel per peer suffices: Asterisk takes a channel out of its
// current Stasis bridge by itself before adding it to the new one.
//
// S may already be gone: a phone may hang up right after the 202. Its
// bridge is then the one the event saw it in, and the transfer goes on.
import type { ChannelTransferEvent } from '../ari/models.js';
import type { BridgeRecord, ChannelRecord } from '../registry/types.js';

export interface TopologySnapshot {
  channels: ReadonlyMap<string, ChannelRecord>;
  bridges: ReadonlyMap<string, BridgeRecord>;
  /** Channels whose SIP Call-ID is the Replaces Call-ID (with tags where read). */
  callIdCandidates: readonly ChannelRecord[];
  /** Unanswered calls whose target leg is still ringing: caller id → ringing leg id. */
  ringingLegs: ReadonlyMap<string, string>;
  /**
   * With a shared registry, when no channel here has the Replaces Call-ID:
   * the other nodes' channels that have it, or why they could not be asked.
   */
  elsewhere?: { found: readonly { node: string; channelId: string; bridged: boolean }[] } | { unavailable: string };
}

export type RejectionReason =
  | 'source-not-bridged'
  | 'unknown-dialog'
  | 'shared-registry-unavailable'
  | 'ambiguous-dialog'
  | 'replaces-itself'
  | 'replaced-gone'
  | 'replaced-not-bridged'
  | 'same-bridge'
  | 'no-transferee'
  | 'no-target';

export interface Rejection {
  ok: false;
  reason: RejectionReason;
  detail: string;
}

export interface Move {
  channelId: string;
  from: string;
  to: string;
}

export interface AttendedPlan {
  ok: true;
  mode: 'bridged';
  sourceId: string;
  replacedId: string;
  /** Who found R: Asterisk (in the event) or this service (by Call-ID and tags). */
  resolvedBy: 'asterisk' | 'registry';
  sourceBridgeId: string;
  targetBridgeId: string;
  transfereeIds: string[];
  targetIds: string[];
  moves: Move[];
  /** Music this service started on either party (phones hold one or both calls before a REFER): stop it once connected. */
  stopMohOn: string[];
  /** After the final state: the phone's two legs, unless already going. */
  hangups: string[];
  /** The bridge left empty by the moves. */
  destroyBridges: string[];
  /** S hung up after sending the REFER. */
  transfererGone: boolean;
}

/**
 * Semi-attended: the phone transfers while its consultation call R still
 * rings. R's target leg, once it answers, goes to the transferees instead.
 */
export interface SemiAttendedPlan {
  ok: true;
  mode: 'ringing';
  sourceId: string;
  replacedId: string;
  resolvedBy: 'asterisk' | 'registry';
  sourceBridgeId: string;
  transfereeIds: string[];
  ringingLegId: string;
  transfererGone: boolean;
}

/**
 * Across nodes: R is on another Asterisk node. A call to that node's
 * Stasis application carries the transferees to R's bridge there (that
 * node's instance connects it and hangs R up); the transferer leaves here.
 */
export interface RemotePlan {
  ok: true;
  mode: 'remote';
  sourceId: string;
  /** R's channel id on its own node. */
  replacedId: string;
  node: string;
  sourceBridgeId: string;
  transfereeIds: string[];
  transfererGone: boolean;
}

export type AttendedPlanResult = AttendedPlan | SemiAttendedPlan | RemotePlan | Rejection;

export interface ReplacesDialog {
  callId: string;
  fromTag: string | undefined;
  toTag: string | undefined;
}

export function replacesDialog(event: ChannelTransferEvent): ReplacesDialog | undefined {
  const dest = event.refer_to.requested_destination;
  if (!dest.protocol_id) return undefined;
  const param = (name: string) => dest.additional_protocol_params?.find((p) => p.parameter_name === name)?.parameter_value;
  return { callId: dest.protocol_id, fromTag: param('from') || undefined, toTag: param('to') || undefined };
}

function reject(reason: RejectionReason, detail: string): Rejection {
  return { ok: false, reason, detail };
}

export function planAttended(event: ChannelTransferEvent, topo: TopologySnapshot): AttendedPlanResult {
  const sourceId = event.referred_by.source_channel.id;
  const source = topo.channels.get(sourceId);
  const transfererGone = !source || source.hangingUp;

  const replaced = resolveReplaced(event, topo);
  if (!replaced.ok) return replaced;
  if ('node' in replaced) return planRemote(event, topo, replaced, transfererGone);
  const replacedId = replaced.channel.id;
  if (replacedId === sourceId) return reject('replaces-itself', `Replaces names the REFER's own dialog (${sourceId})`);
  if (replaced.channel.hangingUp) return reject('replaced-gone', `replaced channel ${replacedId} is hanging up`);

  const sourceBridgeId = source?.bridgeId ?? (transfererGone ? event.referred_by.bridge?.id : undefined);
  const sourceBridge = sourceBridgeId ? topo.bridges.get(sourceBridgeId) : undefined;
  if (!sourceBridge) return reject('source-not-bridged', `transferer channel ${sourceId} is in no bridge`);
  const live = (id: string) => {
    const c = topo.channels.get(id);
    return c !== undefined && !c.hangingUp;
  };
  const transfereeIds = sourceBridge.channelIds.filter((id) => id !== sourceId && id !== replacedId && live(id));

  const targetBridge = replaced.channel.bridgeId ? topo.bridges.get(replaced.channel.bridgeId) : undefined;
  if (!targetBridge) {
    const ringingLegId = topo.ringingLegs.get(replacedId);
    if (!ringingLegId) return reject('replaced-not-bridged', `replaced channel ${replacedId} is in no bridge and dials nobody`);
    if (transfereeIds.length === 0) return reject('no-transferee', `nobody left with the transferer in bridge ${sourceBridge.id}`);
    return {
      ok: true,
      mode: 'ringing',
      sourceId,
      replacedId,
      resolvedBy: replaced.by,
      sourceBridgeId: sourceBridge.id,
      transfereeIds,
      ringingLegId,
      transfererGone,
    };
  }
  if (sourceBridge.id === targetBridge.id) {
    return reject('same-bridge', `both legs are in bridge ${sourceBridge.id}: the transfer would join the call to itself`);
  }
  if (transfereeIds.length === 0) return reject('no-transferee', `nobody left with the transferer in bridge ${sourceBridge.id}`);
  const targetIds = targetBridge.channelIds.filter((id) => id !== replacedId && id !== sourceId && live(id));
  if (targetIds.length === 0) return reject('no-target', `nobody left on the consultation call in bridge ${targetBridge.id}`);

  return {
    ok: true,
    mode: 'bridged',
    sourceId,
    replacedId,
    resolvedBy: replaced.by,
    sourceBridgeId: sourceBridge.id,
    targetBridgeId: targetBridge.id,
    transfereeIds,
    targetIds,
    moves: transfereeIds.map((channelId) => ({ channelId, from: sourceBridge.id, to: targetBridge.id })),
    stopMohOn: [...transfereeIds, ...targetIds].filter((id) => topo.channels.get(id)?.mohByService),
    hangups: [replacedId, sourceId],
    destroyBridges: [sourceBridge.id],
    transfererGone,
  };
}

type Remote = { ok: true; node: string; channelId: string };
type Resolved = { ok: true; channel: ChannelRecord; by: 'asterisk' | 'registry' } | Remote | Rejection;

function planRemote(event: ChannelTransferEvent, topo: TopologySnapshot, replaced: Remote, transfererGone: boolean): RemotePlan | Rejection {
  const sourceId = event.referred_by.source_channel.id;
  const sourceBridgeId = topo.channels.get(sourceId)?.bridgeId ?? (transfererGone ? event.referred_by.bridge?.id : undefined);
  const sourceBridge = sourceBridgeId ? topo.bridges.get(sourceBridgeId) : undefined;
  if (!sourceBridge) return reject('source-not-bridged', `transferer channel ${sourceId} is in no bridge`);
  const transfereeIds = sourceBridge.channelIds.filter((id) => id !== sourceId && topo.channels.get(id) !== undefined && !topo.channels.get(id)!.hangingUp);
  if (transfereeIds.length === 0) return reject('no-transferee', `nobody left with the transferer in bridge ${sourceBridge.id}`);
  return { ok: true, mode: 'remote', sourceId, replacedId: replaced.channelId, node: replaced.node, sourceBridgeId: sourceBridge.id, transfereeIds, transfererGone };
}

function resolveReplaced(event: ChannelTransferEvent, topo: TopologySnapshot): Resolved {
  const byAsterisk = event.refer_to.destination_channel;
  if (byAsterisk) {
    const record = topo.channels.get(byAsterisk.id);
    if (!record) return reject('replaced-gone', `replaced channel ${byAsterisk.id} is gone`);
    return { ok: true, channel: record, by: 'asterisk' };
  }
  const dialog = replacesDialog(event);
  if (!dialog) return reject('unknown-dialog', 'the REFER names no Replaces dialog');
  const sourceId = event.referred_by.source_channel.id;
  const matches = topo.callIdCandidates.filter((c) => c.callId === dialog.callId && tagsMatch(c, dialog));
  // A looped call can put the same Call-ID on two channels, one of them the
  // source's own dialog partner; the tags tell them apart where known.
  const others = matches.filter((c) => c.id !== sourceId);
  if (others.length === 0) {
    if (matches.length > 0) return reject('replaces-itself', `Replaces names the REFER's own dialog (${sourceId})`);
    return elsewhere(topo, dialog.callId) ?? reject('unknown-dialog', `no call with SIP Call-ID ${dialog.callId} and matching tags`);
  }
  if (others.length > 1) {
    return reject('ambiguous-dialog', `${others.length} calls match SIP Call-ID ${dialog.callId}; the tags do not single one out`);
  }
  return { ok: true, channel: others[0]!, by: 'registry' };
}

/** A dialog that is not on this node: on which other node, if the other nodes tell. */
function elsewhere(topo: TopologySnapshot, callId: string): Remote | Rejection | undefined {
  const other = topo.elsewhere;
  if (!other) return undefined;
  if ('unavailable' in other) {
    return reject('shared-registry-unavailable', `no call with SIP Call-ID ${callId} on this node, and the other nodes cannot be asked: ${other.unavailable}`);
  }
  const [first, ...more] = other.found;
  if (!first) return undefined;
  if (more.length > 0) return reject('ambiguous-dialog', `${other.found.length} calls on other nodes have SIP Call-ID ${callId}`);
  // A consultation call still ringing on another node is not taken over from here.
  if (!first.bridged) return reject('replaced-not-bridged', `the call with SIP Call-ID ${callId} on node ${first.node} is in no bridge`);
  return { ok: true, node: first.node, channelId: first.channelId };
}

// Replaces names the dialog's from-tag and to-tag. For a call the phone made,
// from = the phone's tag (Asterisk's remote tag) and to = Asterisk's local
// tag; for a call Asterisk made, the other way round. Either orientation is
// the same dialog. Tags not known on one side do not exclude a candidate.
function tagsMatch(channel: ChannelRecord, dialog: ReplacesDialog): boolean {
  const tags = channel.dialogTags;
  if (!tags || dialog.fromTag === undefined || dialog.toTag === undefined) return true;
  return (
    (tags.remote === dialog.fromTag && tags.local === dialog.toTag) ||
    (tags.local === dialog.fromTag && tags.remote === dialog.toTag)
  );
}
