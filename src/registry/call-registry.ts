// Keeps the registry current from ARI events and rebuilds it on reconnect.
// Events must be applied one at a time, in the order they arrived.
import type { AriRestClient } from '../ari/rest-client.js';
import type { AriEvent, Bridge, Channel } from '../ari/models.js';
import type { Logger } from '../logger.js';
import { bridgeRecord, channelRecord, isPjsipChannel } from './records.js';
import type { DialogTags, OtherNodes, RegistryStore } from './types.js';

type RegistryRest = Pick<AriRestClient, 'listChannels' | 'listBridges' | 'getChannelVariable'>;

export class CallRegistry {
  private readonly log: Logger;

  constructor(
    readonly store: RegistryStore,
    private readonly rest: RegistryRest,
    logger: Logger,
    /** With REGISTRY=redis: the other Asterisk nodes' calls. */
    readonly otherNodes?: OtherNodes,
  ) {
    this.log = logger.child({ component: 'registry' });
  }

  async apply(event: AriEvent): Promise<void> {
    switch (event.type) {
      case 'StasisStart':
        await this.upsertChannel(event.channel);
        this.lookUpCallIdIfMissing(event.channel);
        return;
      case 'ChannelCreated':
      case 'ChannelStateChange':
      case 'ChannelHold':
      case 'ChannelUnhold':
        await this.upsertChannel(event.channel);
        return;
      case 'ChannelVarset':
        // With subscribeAll these arrive for channels outside our app too.
        if (event.channel && (await this.store.getChannel(event.channel.id))) await this.upsertChannel(event.channel);
        return;
      case 'ChannelHangupRequest':
        if (await this.store.getChannel(event.channel.id)) await this.store.patchChannel(event.channel.id, { hangingUp: true });
        return;
      case 'StasisEnd':
      case 'ChannelDestroyed':
        await this.removeChannel(event.channel.id);
        return;
      case 'BridgeCreated':
        await this.putBridge(event.bridge, {});
        return;
      case 'ChannelEnteredBridge':
        if (!event.channel) {
          await this.putBridge(event.bridge, {});
          return;
        }
        await this.upsertChannel(event.channel);
        await this.enterBridge(event.channel.id, event.bridge);
        return;
      case 'ChannelLeftBridge':
        await this.putBridge(event.bridge, { remove: event.channel.id });
        await this.leaveBridge(event.channel.id, event.bridge.id);
        return;
      case 'BridgeDestroyed': {
        const known = await this.store.getBridge(event.bridge.id);
        for (const id of new Set([...(known?.channelIds ?? []), ...event.bridge.channels])) await this.leaveBridge(id, event.bridge.id);
        await this.store.removeBridge(event.bridge.id);
        return;
      }
      case 'ApplicationReplaced':
      case 'ChannelTransfer':
        return; // Transfers are the transfer handler's; topology comes from the events above.
    }
  }

  /** Rebuilds everything from Asterisk's current channels and bridges; resolves with what Asterisk showed. */
  async resync(): Promise<{ channels: Channel[]; bridges: Bridge[] }> {
    const [channels, bridges] = await Promise.all([this.rest.listChannels(), this.rest.listBridges()]);
    const bridgeOf = new Map<string, string>();
    for (const b of bridges) for (const id of b.channels) bridgeOf.set(id, b.id);
    const previous = new Map((await this.store.listChannels()).map((c) => [c.id, c]));
    const records = channels.map((c) => ({
      ...channelRecord(c, previous.get(c.id)),
      bridgeId: bridgeOf.get(c.id),
      hangingUp: false,
    }));
    await this.store.replaceAll(records, bridges.map(bridgeRecord));
    for (const c of channels) this.lookUpCallIdIfMissing(c);
    this.log.info({ channels: channels.length, bridges: bridges.length }, 'registry resynced from ARI');
    return { channels, bridges };
  }

  /**
   * The SIP dialog tags of a channel, read from Asterisk once and cached.
   * Undefined when they cannot be read (not PJSIP, gone).
   */
  async dialogTags(channelId: string): Promise<DialogTags | undefined> {
    const record = await this.store.getChannel(channelId);
    if (!record) return undefined;
    if (record.dialogTags) return record.dialogTags;
    try {
      const [local, remote] = await Promise.all([
        this.rest.getChannelVariable(channelId, 'CHANNEL(pjsip,local_tag)'),
        this.rest.getChannelVariable(channelId, 'CHANNEL(pjsip,remote_tag)'),
      ]);
      const tags = { local, remote };
      await this.store.patchChannel(channelId, { dialogTags: tags });
      return tags;
    } catch (err) {
      this.log.warn({ err, channelId }, 'could not read SIP dialog tags');
      return undefined;
    }
  }

  private async upsertChannel(channel: Channel): Promise<void> {
    await this.store.updateChannel(channel.id, (previous) => channelRecord(channel, previous));
  }

  private async removeChannel(id: string): Promise<void> {
    const record = await this.store.getChannel(id);
    if (record?.bridgeId) await this.dropMember(record.bridgeId, id);
    await this.store.removeChannel(id);
  }

  // A channel and its bridge always agree: if a channel names a bridge, that
  // bridge lists it. Events can disagree (a snapshot taken before another
  // event, or a malformed one), so every write keeps both sides in step.
  private async enterBridge(channelId: string, bridge: Bridge): Promise<void> {
    const previous = (await this.store.getChannel(channelId))?.bridgeId;
    if (previous && previous !== bridge.id) await this.dropMember(previous, channelId);
    await this.putBridge(bridge, { add: channelId });
    await this.store.patchChannel(channelId, { bridgeId: bridge.id });
  }

  /** Stores a bridge snapshot; channels it no longer lists stop naming it. */
  private async putBridge(bridge: Bridge, change: { add?: string; remove?: string }): Promise<void> {
    const members = new Set(bridge.channels);
    if (change.add) members.add(change.add);
    if (change.remove) members.delete(change.remove);
    const known = await this.store.getBridge(bridge.id);
    await this.store.putBridge({ ...bridgeRecord(bridge), channelIds: [...members] });
    for (const id of known?.channelIds ?? []) if (!members.has(id)) await this.leaveBridge(id, bridge.id);
    for (const id of members) {
      const c = await this.store.getChannel(id);
      if (c && !c.bridgeId) await this.store.patchChannel(id, { bridgeId: bridge.id });
    }
  }

  private async leaveBridge(channelId: string, bridgeId: string): Promise<void> {
    const record = await this.store.getChannel(channelId);
    if (record?.bridgeId === bridgeId) await this.store.patchChannel(channelId, { bridgeId: undefined });
  }

  private async dropMember(bridgeId: string, channelId: string): Promise<void> {
    const bridge = await this.store.getBridge(bridgeId);
    if (bridge) await this.store.putBridge({ ...bridge, channelIds: bridge.channelIds.filter((c) => c !== channelId) });
  }

  // Asterisk 20+ fills protocol_id; older ones, or a snapshot taken before
  // the SIP dialog existed, need the dialplan function. Runs in the
  // background: the event queue must not wait on a REST round trip.
  private lookUpCallIdIfMissing(channel: Channel): void {
    if (channel.protocol_id || !isPjsipChannel(channel.name)) return;
    this.rest
      .getChannelVariable(channel.id, 'CHANNEL(pjsip,call-id)')
      .then((callId) => (callId ? this.store.patchChannel(channel.id, { callId }) : undefined))
      .catch((err: unknown) => this.log.warn({ err, channelId: channel.id }, 'could not read the SIP Call-ID'));
  }
}

