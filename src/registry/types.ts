// The call registry's records and the store interface.
// The store is asynchronous so that a shared store (Redis) can implement it;
// the in-memory store answers at once.
import type { CallerId, ChannelState } from '../ari/models.js';

export interface DialogTags {
  /** Asterisk's own tag on the SIP dialog: CHANNEL(pjsip,local_tag). */
  local: string;
  /** The phone's tag: CHANNEL(pjsip,remote_tag). */
  remote: string;
}

export interface ChannelRecord {
  id: string;
  name: string;
  state: ChannelState;
  /** SIP Call-ID; undefined for Local channels and until it is known. */
  callId: string | undefined;
  caller: CallerId;
  /** The bridge the channel is in, if any. */
  bridgeId: string | undefined;
  /** Read on demand, only when a Replaces dialog must be matched by tags. */
  dialogTags: DialogTags | undefined;
  /** A hangup was requested: the channel is going away. */
  hangingUp: boolean;
  /** This service started music on hold on it, so this service must stop it. */
  mohByService: boolean;
}

export interface BridgeRecord {
  id: string;
  name: string;
  channelIds: string[];
}

export interface RegistryCounts {
  channels: number;
  bridges: number;
  callIds: number;
}

export interface RegistryStore {
  getChannel(id: string): Promise<ChannelRecord | undefined>;
  getBridge(id: string): Promise<BridgeRecord | undefined>;
  /** Channels carrying this SIP Call-ID (two for a call looped through Asterisk). */
  channelsByCallId(callId: string): Promise<ChannelRecord[]>;
  /** True for a channel that left recently (kept a short while, then forgotten). */
  recentlyEnded(id: string): Promise<boolean>;

  putChannel(record: ChannelRecord): Promise<void>;
  /**
   * Read-modify-write of one channel as one step: no other write to it can
   * land between the read and the write (a transfer's patch while an event
   * is applied would otherwise be lost).
   */
  updateChannel(id: string, update: (previous: ChannelRecord | undefined) => ChannelRecord): Promise<void>;
  patchChannel(id: string, patch: Partial<Omit<ChannelRecord, 'id'>>): Promise<void>;
  removeChannel(id: string): Promise<void>;
  putBridge(record: BridgeRecord): Promise<void>;
  removeBridge(id: string): Promise<void>;
  /** Replaces everything, as after a resync from GET /channels and /bridges. */
  replaceAll(channels: ChannelRecord[], bridges: BridgeRecord[]): Promise<void>;

  listChannels(): Promise<ChannelRecord[]>;
  listBridges(): Promise<BridgeRecord[]>;
  counts(): Promise<RegistryCounts>;
}

/** A channel another Asterisk node's instance published to the shared registry. */
export interface RemoteChannel {
  node: string;
  channel: ChannelRecord;
}

/**
 * What a transfer on one node asks of another node's instance: connect the
 * call arriving over the trunk for `transferId` to the bridge of
 * `replacedId` (the replaced leg of the consultation call), and hang that
 * leg up.
 */
export interface JoinRequest {
  transferId: string;
  fromNode: string;
  replacedId: string;
}

/** The other nodes (REGISTRY=redis); every method throws SharedRegistryUnavailable when Redis cannot be asked. */
export interface OtherNodes {
  /** This node's name. */
  readonly node: string;
  /** Channels on the other live nodes carrying this SIP Call-ID. */
  findOnOtherNodes(callId: string): Promise<RemoteChannel[]>;
  /** Leaves a join request for `node`'s instance (it expires unless taken). */
  offerJoin(node: string, request: JoinRequest): Promise<void>;
  /** Takes, once, the join request left for this node under `transferId`. */
  takeJoin(transferId: string): Promise<JoinRequest | undefined>;
  /** Tells `node`'s instance whether the call it connected for `transferId` was joined here. */
  confirmJoin(node: string, transferId: string, joined: boolean): Promise<void>;
  /** Waits up to `timeoutMs` for the transferring node's word on `transferId`'s call: undefined if none came. */
  joinConfirmation(transferId: string, timeoutMs: number): Promise<boolean | undefined>;
}

export class SharedRegistryUnavailable extends Error {
  override readonly name = 'SharedRegistryUnavailable';
  readonly code = 'SHARED_REGISTRY_UNAVAILABLE';
}
