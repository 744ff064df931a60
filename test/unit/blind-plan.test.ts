import { describe, expect, it } from 'vitest';
import { channelRecord } from '../helpers/channels.js';
import type { ChannelTransferEvent } from '../../src/ari/models.js';
import type { BridgeRecord, ChannelRecord } from '../../src/registry/types.js';
import type { TopologySnapshot } from '../../src/transfer/attended-plan.js';
import { planBlind } from '../../src/transfer/blind-plan.js';

const chan = channelRecord;

function topo(channels: ChannelRecord[], members = channels.map((c) => c.id)): TopologySnapshot {
  const bridge: BridgeRecord = { id: 'b1', name: 'call', channelIds: members };
  return { channels: new Map(channels.map((c) => [c.id, c])), bridges: new Map([['b1', bridge]]), callIdCandidates: [], ringingLegs: new Map() };
}

function refer(destination: string | undefined, source = 'bob'): ChannelTransferEvent {
  return {
    type: 'ChannelTransfer',
    timestamp: 't',
    application: 'ari-transfer',
    refer_to: { requested_destination: destination === undefined ? {} : { destination } },
    referred_by: { source_channel: { id: source, name: `PJSIP/${source}-1`, state: 'Up', caller: { name: '', number: '' }, connected: { name: '', number: '' }, accountcode: '', dialplan: { context: 'c', exten: 's', priority: 1 }, creationtime: 't', language: 'en' } },
  };
}

describe('planBlind', () => {
  it('sends everyone else in the transferer bridge to the destination', () => {
    expect(planBlind(refer('carol'), topo([chan('alice'), chan('bob'), chan('dave')]))).toEqual({
      ok: true,
      destination: 'carol',
      sourceId: 'bob',
      sourceBridgeId: 'b1',
      transfereeIds: ['alice', 'dave'],
      transfererGone: false,
    });
  });

  it('still sends the transferees on when the transferer hung up after its REFER', () => {
    const gone = refer('carol');
    gone.referred_by.bridge = { id: 'b1' } as NonNullable<typeof gone.referred_by.bridge>;
    expect(planBlind(gone, topo([chan('alice')], ['alice']))).toMatchObject({ ok: true, sourceBridgeId: 'b1', transfereeIds: ['alice'], transfererGone: true });
    expect(planBlind(gone, topo([chan('alice'), chan('bob', { hangingUp: true })]))).toMatchObject({ ok: true, transfereeIds: ['alice'], transfererGone: true });
  });

  it('rejects what cannot be transferred', () => {
    expect(planBlind(refer(''), topo([chan('alice'), chan('bob')]))).toMatchObject({ ok: false, reason: 'no-destination' });
    expect(planBlind(refer('carol'), topo([chan('alice')], ['alice']))).toMatchObject({ ok: false, reason: 'source-not-bridged' });
    expect(planBlind(refer('carol'), topo([chan('alice'), chan('bob', { bridgeId: undefined })]))).toMatchObject({ ok: false, reason: 'source-not-bridged' });
    expect(planBlind(refer('carol'), topo([chan('alice', { hangingUp: true }), chan('bob')]))).toMatchObject({ ok: false, reason: 'no-transferee' });
  });
});
