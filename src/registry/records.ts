// ARI snapshots → registry records.
import type { Bridge, Channel } from '../ari/models.js';
import type { BridgeRecord, ChannelRecord } from './types.js';

/** A record from a snapshot, keeping what snapshots do not carry from `previous`. */
export function channelRecord(channel: Channel, previous?: ChannelRecord): ChannelRecord {
  return {
    id: channel.id,
    name: channel.name,
    state: channel.state,
    // ChannelCreated shows protocol_id "" even for PJSIP (see the traces):
    // an empty value never erases a Call-ID learnt before.
    callId: channel.protocol_id || previous?.callId,
    caller: { name: channel.caller?.name ?? '', number: channel.caller?.number ?? '' },
    bridgeId: previous?.bridgeId,
    dialogTags: previous?.dialogTags,
    hangingUp: previous?.hangingUp ?? false,
    mohByService: previous?.mohByService ?? false,
  };
}

export function bridgeRecord(bridge: Bridge): BridgeRecord {
  return { id: bridge.id, name: bridge.name, channelIds: [...bridge.channels] };
}

/** Only PJSIP channels have a SIP Call-ID to look up. */
export function isPjsipChannel(name: string): boolean {
  return name.startsWith('PJSIP/');
}
