// Building the Channel and Bridge JSON objects exactly as the traces show them
// (key order included: ast_channel_snapshot_to_json / ast_bridge_snapshot_to_json).

import type { Bridge, Channel } from '../../src/ari/models.js';
import type { BridgeRecord, ChannelRecord } from './types.js';
import { readChannelVariable } from './variables.js';

export function channelSnapshot(ch: ChannelRecord, channelvars: readonly string[] = []): Channel {
  const snap: Channel = {
    id: ch.id,
    name: ch.name,
    state: ch.state,
    protocol_id: ch.protocolId,
    caller: { name: ch.caller.name, number: ch.caller.number },
    connected: { name: ch.connected.name, number: ch.connected.number },
    accountcode: '',
    dialplan: {
      context: ch.dialplan.context,
      exten: ch.dialplan.exten,
      priority: ch.dialplan.priority,
      app_name: ch.dialplan.app_name,
      app_data: ch.dialplan.app_data,
    },
    creationtime: ch.creationtime,
    language: ch.language,
  };
  if (channelvars.length > 0) {
    const vars: Record<string, string> = {};
    for (const v of channelvars) {
      const r = readChannelVariable(ch, v);
      vars[v] = r.ok ? r.value : '';
    }
    snap.channelvars = vars;
  }
  return snap;
}

export function bridgeSnapshot(b: BridgeRecord): Bridge {
  return {
    id: b.id,
    technology: b.technology,
    bridge_type: b.bridgeType,
    bridge_class: 'stasis',
    creator: 'Stasis',
    name: b.name,
    channels: [...b.channels],
    creationtime: b.creationtime,
    video_mode: 'talker',
  };
}

/**
 * The bridging technology Asterisk's smart bridge settles on for the current members
 * (bridge-technology trace): native_rtp for two PJSIP channels, softmix for three or more,
 * simple_bridge otherwise. Bridge MOH adds an announcer channel, a member that is not in
 * `channels` and cannot bridge natively; `dtmf_events` and `proxy_media` bridges never use
 * native_rtp; holding bridges are holding_bridge.
 */
export function settledTechnology(b: BridgeRecord, techOf: (channelId: string) => string | undefined): string {
  if (b.bridgeType === 'holding') return 'holding_bridge';
  const n = b.channels.length + (b.mohPlaying ? 1 : 0);
  if (n >= 3) return 'softmix';
  if (n === 2 && !b.mohPlaying && !b.noNative && b.channels.every((id) => techOf(id) === 'PJSIP')) return 'native_rtp';
  return 'simple_bridge';
}
