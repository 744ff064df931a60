// Channels as the unit tests need them: a registry record and an ARI snapshot.
import type { Channel } from '../../src/ari/models.js';
import type { ChannelRecord } from '../../src/registry/types.js';

/** A PJSIP channel's registry record, up, in bridge b1, its caller named after its id. */
export function channelRecord(id: string, extra: Partial<ChannelRecord> = {}): ChannelRecord {
  return {
    id,
    name: `PJSIP/${id}-00000001`,
    state: 'Up',
    callId: `call-${id}`,
    caller: { name: id.toUpperCase(), number: id },
    bridgeId: 'b1',
    dialogTags: undefined,
    hangingUp: false,
    mohByService: false,
    ...extra,
  };
}

/** A PJSIP channel as ARI shows it in events and GET /channels. */
export function channelSnapshot(id: string, extra: Partial<Channel> = {}): Channel {
  return {
    id,
    name: `PJSIP/${id}-1`,
    state: 'Up',
    protocol_id: '',
    caller: { name: '', number: '' },
    connected: { name: '', number: '' },
    accountcode: '',
    dialplan: { context: 'c', exten: 's', priority: 1 },
    creationtime: 't',
    language: 'en',
    ...extra,
  };
}
