import { describe, expect, it } from 'vitest';
import type { Channel, ChannelTransferEvent } from '../../src/ari/models.js';
import type { BridgeRecord, ChannelRecord } from '../../src/registry/types.js';
import { planAttended, replacesDialog, type TopologySnapshot } from '../../src/transfer/attended-plan.js';

// The call schema of DESIGN.md: A --- bridge1 --- B (held), C --- bridge2 --- D (consultation).
// The phone owns B and D; here the REFER arrives on B, Replaces names D.
function chan(id: string, extra: Partial<ChannelRecord> = {}): ChannelRecord {
  return {
    id,
    name: `PJSIP/${id}-00000001`,
    state: 'Up',
    callId: `call-${id}`,
    caller: { name: id, number: id },
    bridgeId: undefined,
    dialogTags: undefined,
    hangingUp: false,
    mohByService: false,
    ...extra,
  };
}

function snapshotOf(channel: ChannelRecord): Channel {
  return {
    id: channel.id,
    name: channel.name,
    state: channel.state,
    protocol_id: channel.callId ?? '',
    caller: channel.caller,
    connected: { name: '', number: '' },
    accountcode: '',
    dialplan: { context: 'from-phones', exten: '100', priority: 1 },
    creationtime: '2026-11-21T12:47:51.700+0000',
    language: 'en',
  };
}

function world(overrides: Partial<Record<'A' | 'B' | 'C' | 'D', Partial<ChannelRecord>>> = {}) {
  const channels = new Map<string, ChannelRecord>([
    ['A', chan('A', { bridgeId: 'bridge1', ...overrides.A })],
    ['B', chan('B', { bridgeId: 'bridge1', ...overrides.B })],
    ['C', chan('C', { bridgeId: 'bridge2', ...overrides.C })],
    ['D', chan('D', { bridgeId: 'bridge2', dialogTags: { local: 'ast-tag', remote: 'phone-tag' }, ...overrides.D })],
  ]);
  const bridges = new Map<string, BridgeRecord>([
    ['bridge1', { id: 'bridge1', name: 'original', channelIds: ['A', 'B'] }],
    ['bridge2', { id: 'bridge2', name: 'consult', channelIds: ['C', 'D'] }],
  ]);
  return { channels, bridges };
}

function topo(w: ReturnType<typeof world>, candidates: string[] = []): TopologySnapshot {
  return { ...w, callIdCandidates: candidates.map((id) => w.channels.get(id)!), ringingLegs: new Map() };
}

function transferEvent(
  w: ReturnType<typeof world>,
  opts: { source?: string; replaced?: string | undefined; callId?: string; from?: string; to?: string } = {},
): ChannelTransferEvent {
  const source = w.channels.get(opts.source ?? 'B')!;
  const replaced = opts.replaced === undefined ? undefined : w.channels.get(opts.replaced);
  return {
    type: 'ChannelTransfer',
    timestamp: '2026-11-21T12:47:57.347+0000',
    application: 'ari-transfer',
    refer_to: {
      requested_destination: {
        destination: '1002',
        protocol_id: opts.callId ?? 'call-D',
        additional_protocol_params: [
          { parameter_name: 'from', parameter_value: opts.from ?? 'phone-tag' },
          { parameter_name: 'to', parameter_value: opts.to ?? 'ast-tag' },
        ],
      },
      ...(replaced ? { destination_channel: snapshotOf(replaced) } : {}),
    },
    referred_by: { source_channel: snapshotOf(source) },
  };
}

describe('planAttended', () => {
  it('moves the transferee into the consultation bridge when Asterisk resolved the dialog', () => {
    const w = world();
    const plan = planAttended(transferEvent(w, { replaced: 'D' }), topo(w));
    expect(plan).toEqual({
      ok: true,
      mode: 'bridged',
      sourceId: 'B',
      replacedId: 'D',
      resolvedBy: 'asterisk',
      sourceBridgeId: 'bridge1',
      targetBridgeId: 'bridge2',
      transfereeIds: ['A'],
      targetIds: ['C'],
      moves: [{ channelId: 'A', from: 'bridge1', to: 'bridge2' }],
      stopMohOn: [],
      hangups: ['D', 'B'],
      destroyBridges: ['bridge1'],
      transfererGone: false,
    });
  });

  it('works the same whichever leg carries the REFER', () => {
    const w = world();
    const plan = planAttended(transferEvent(w, { source: 'D', replaced: 'B' }), topo(w));
    expect(plan).toMatchObject({ ok: true, transfereeIds: ['C'], targetIds: ['A'], targetBridgeId: 'bridge1', destroyBridges: ['bridge2'] });
  });

  it('finds the replaced leg by Call-ID and tags when Asterisk could not', () => {
    const w = world();
    const plan = planAttended(transferEvent(w), topo(w, ['D']));
    expect(plan).toMatchObject({ ok: true, replacedId: 'D', resolvedBy: 'registry', moves: [{ channelId: 'A', to: 'bridge2' }] });
  });

  it('accepts the tags in either orientation (a call Asterisk placed)', () => {
    const w = world();
    const plan = planAttended(transferEvent(w, { from: 'ast-tag', to: 'phone-tag' }), topo(w, ['D']));
    expect(plan).toMatchObject({ ok: true, replacedId: 'D' });
  });

  it('rejects a Call-ID whose tags do not match', () => {
    const w = world();
    const plan = planAttended(transferEvent(w, { to: 'someone-else' }), topo(w, ['D']));
    expect(plan).toMatchObject({ ok: false, reason: 'unknown-dialog' });
  });

  it('rejects an unknown Call-ID', () => {
    const w = world();
    expect(planAttended(transferEvent(w, { callId: 'nobody@example' }), topo(w, []))).toMatchObject({ ok: false, reason: 'unknown-dialog' });
  });

  it('plans a dialog found only on another node as a call to that node; says why when the other nodes cannot be asked', () => {
    const w = world();
    const away = { ...topo(w, []), elsewhere: { found: [{ node: 'ast2', channelId: 'far-1', bridged: true }] } };
    expect(planAttended(transferEvent(w, { callId: 'far@example' }), away)).toEqual({
      ok: true,
      mode: 'remote',
      sourceId: 'B',
      replacedId: 'far-1',
      node: 'ast2',
      sourceBridgeId: 'bridge1',
      transfereeIds: ['A'],
      transfererGone: false,
    });
    const ringingThere = { ...topo(w, []), elsewhere: { found: [{ node: 'ast2', channelId: 'far-1', bridged: false }] } };
    expect(planAttended(transferEvent(w, { callId: 'far@example' }), ringingThere)).toMatchObject({ ok: false, reason: 'replaced-not-bridged' });
    const twice = { ...topo(w, []), elsewhere: { found: [{ node: 'ast2', channelId: 'far-1', bridged: true }, { node: 'ast3', channelId: 'far-2', bridged: true }] } };
    expect(planAttended(transferEvent(w, { callId: 'far@example' }), twice)).toMatchObject({ ok: false, reason: 'ambiguous-dialog' });
    const cut = { ...topo(w, []), elsewhere: { unavailable: 'Redis is not connected (reconnecting)' } };
    expect(planAttended(transferEvent(w, { callId: 'far@example' }), cut)).toEqual({
      ok: false,
      reason: 'shared-registry-unavailable',
      detail: 'no call with SIP Call-ID far@example on this node, and the other nodes cannot be asked: Redis is not connected (reconnecting)',
    });
    // Asked, and nowhere: unknown, as without a shared registry.
    const nowhere = { ...topo(w, []), elsewhere: { found: [] } };
    expect(planAttended(transferEvent(w, { callId: 'far@example' }), nowhere)).toMatchObject({ ok: false, reason: 'unknown-dialog' });
  });

  it('rejects two channels matching the dialog', () => {
    const w = world({ C: { callId: 'call-D', dialogTags: undefined } });
    expect(planAttended(transferEvent(w), topo(w, ['C', 'D']))).toMatchObject({ ok: false, reason: 'ambiguous-dialog' });
  });

  it('rejects Replaces naming the REFER own dialog', () => {
    const w = world();
    expect(planAttended(transferEvent(w, { replaced: 'B' }), topo(w))).toMatchObject({ ok: false, reason: 'replaces-itself' });
    expect(planAttended(transferEvent(w, { callId: 'call-B' }), topo(w, ['B']))).toMatchObject({ ok: false, reason: 'replaces-itself' });
  });

  it('rejects legs in one and the same bridge', () => {
    const w = world({ D: { bridgeId: 'bridge1' } });
    w.bridges.get('bridge1')!.channelIds.push('D');
    expect(planAttended(transferEvent(w, { replaced: 'D' }), topo(w))).toMatchObject({ ok: false, reason: 'same-bridge' });
  });

  it('rejects a replaced leg in no bridge that dials nobody', () => {
    const w = world({ D: { bridgeId: undefined } });
    expect(planAttended(transferEvent(w, { replaced: 'D' }), topo(w))).toMatchObject({ ok: false, reason: 'replaced-not-bridged' });
  });

  it('plans a semi-attended transfer when the consultation call still rings', () => {
    const w = world({ D: { bridgeId: undefined } });
    const snapshot = { ...topo(w), ringingLegs: new Map([['D', 'route-leg-1']]) };
    expect(planAttended(transferEvent(w, { replaced: 'D' }), snapshot)).toEqual({
      ok: true,
      mode: 'ringing',
      sourceId: 'B',
      replacedId: 'D',
      resolvedBy: 'asterisk',
      sourceBridgeId: 'bridge1',
      transfereeIds: ['A'],
      ringingLegId: 'route-leg-1',
      transfererGone: false,
    });
  });

  it('rejects a transferer in no bridge', () => {
    const w = world({ B: { bridgeId: undefined } });
    expect(planAttended(transferEvent(w, { replaced: 'D' }), topo(w))).toMatchObject({ ok: false, reason: 'source-not-bridged' });
  });

  it('goes on when the transferer is going away or gone: from its bridge, else the bridge the event saw it in', () => {
    const w1 = world({ B: { hangingUp: true } });
    expect(planAttended(transferEvent(w1, { replaced: 'D' }), topo(w1))).toMatchObject({
      ok: true,
      sourceBridgeId: 'bridge1',
      moves: [{ channelId: 'A', from: 'bridge1', to: 'bridge2' }],
      transfererGone: true,
    });
    const w2 = world();
    const event = transferEvent(w2, { replaced: 'D' });
    w2.channels.delete('B');
    expect(planAttended(event, topo(w2))).toMatchObject({ ok: false, reason: 'source-not-bridged' });
    event.referred_by.bridge = { id: 'bridge1', channels: ['A', 'B'] } as never;
    expect(planAttended(event, topo(w2))).toMatchObject({ ok: true, sourceBridgeId: 'bridge1', transfereeIds: ['A'], transfererGone: true });
  });

  it('rejects when the replaced leg is going away', () => {
    const w2 = world({ D: { hangingUp: true } });
    expect(planAttended(transferEvent(w2, { replaced: 'D' }), topo(w2))).toMatchObject({ ok: false, reason: 'replaced-gone' });
    const w3 = world();
    w3.channels.delete('D');
    expect(planAttended(transferEvent(world(), { replaced: 'D' }), topo(w3))).toMatchObject({ ok: false, reason: 'replaced-gone' });
  });

  it('rejects when nobody is left to transfer or to transfer to', () => {
    const w1 = world({ A: { hangingUp: true } });
    expect(planAttended(transferEvent(w1, { replaced: 'D' }), topo(w1))).toMatchObject({ ok: false, reason: 'no-transferee' });
    const w2 = world();
    w2.channels.delete('C');
    expect(planAttended(transferEvent(w2, { replaced: 'D' }), topo(w2))).toMatchObject({ ok: false, reason: 'no-target' });
  });

  it('moves every party of a multi-party original call and stops the music this service started', () => {
    const w = world({ A: { mohByService: true } });
    w.channels.set('E', chan('E', { bridgeId: 'bridge1' }));
    w.bridges.get('bridge1')!.channelIds.push('E');
    const plan = planAttended(transferEvent(w, { replaced: 'D' }), topo(w));
    expect(plan).toMatchObject({
      ok: true,
      transfereeIds: ['A', 'E'],
      moves: [
        { channelId: 'A', from: 'bridge1', to: 'bridge2' },
        { channelId: 'E', from: 'bridge1', to: 'bridge2' },
      ],
      stopMohOn: ['A'],
    });
  });
});

it('stops music this service started on the target too (the phone held its consultation call)', () => {
  const w = world({ A: { mohByService: true }, C: { mohByService: true } });
  expect(planAttended(transferEvent(w, { replaced: 'D' }), topo(w))).toMatchObject({ ok: true, stopMohOn: ['A', 'C'] });
});

describe('replacesDialog', () => {
  it('reads the Call-ID and the tags named by Replaces', () => {
    const w = world();
    expect(replacesDialog(transferEvent(w))).toEqual({ callId: 'call-D', fromTag: 'phone-tag', toTag: 'ast-tag' });
  });

  it('is undefined for a blind transfer', () => {
    const e = transferEvent(world());
    delete e.refer_to.requested_destination.protocol_id;
    expect(replacesDialog(e)).toBeUndefined();
  });
});
