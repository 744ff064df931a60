// REFER / NOTIFY rules of ari-only mode (traces' README table), over real HTTP and WebSocket.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AriEmulator } from './index.js';
import { ari, connectEvents, sleep, type EventClient, type WireEvent } from './test-helpers.js';

let emu: AriEmulator;
let events: EventClient;

beforeEach(async () => {
  emu = await AriEmulator.start();
  events = await connectEvents(emu);
});
afterEach(async () => {
  await events.close();
  await emu.close();
});

/** alice (transferee) and bob (transferer) answered and bridged, as in the blind traces. */
async function twoPartyCall(): Promise<{ alice: string; bob: string; bridge: string }> {
  const alice = emu.phoneCalls({ endpoint: 'alice', exten: '100' }).id;
  const bob = emu.phoneCalls({ endpoint: 'bob', exten: '200' }).id;
  emu.answer(alice);
  emu.answer(bob);
  const bridge = emu.createBridge({ id: 'b1', name: 'call' }).id;
  emu.addToBridge(bridge, alice);
  emu.addToBridge(bridge, bob);
  return { alice, bob, bridge };
}

const progress = (channel: string, states?: string) =>
  ari(emu, 'POST', `/channels/${channel}/transfer_progress`, { query: states === undefined ? {} : { states } });

const transfers = (since = 0): WireEvent[] => events.events.slice(since).filter((e) => e.type === 'ChannelTransfer');

describe('transfer_progress → NOTIFY sipfrags', () => {
  it('channel_progress gives 100 (active), channel_answered 200 (terminated); each call is echoed with its state', async () => {
    const { bob } = await twoPartyCall();
    const refer = emu.sendRefer(bob, { kind: 'blind', destination: '1002' });
    const first = await events.waitFor('ChannelTransfer');
    expect('state' in first).toBe(false);
    expect(refer.sipfrags).toEqual([]);

    expect((await progress(bob, 'channel_progress')).status).toBe(204);
    expect(refer.notifies).toEqual([{ code: 100, subscriptionState: 'active' }]);
    expect(refer.terminated).toBe(false);
    expect((await progress(bob, 'channel_answered')).status).toBe(204);
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    expect(refer.notifies.at(-1)).toEqual({ code: 200, subscriptionState: 'terminated' });

    await events.waitFor('ChannelTransfer', (e) => e.state === 'channel_answered');
    expect(transfers().map((e) => e.state ?? null)).toEqual([null, 'channel_progress', 'channel_answered']);
  });

  it('a terminating first state gets an automatic 100 first; channel_unavailable is echoed as channel_declined', async () => {
    const { bob } = await twoPartyCall();
    const refer = emu.sendRefer(bob, { kind: 'blind', destination: '1002' });
    await events.waitFor('ChannelTransfer');
    expect((await progress(bob, 'channel_unavailable')).status).toBe(204);
    expect(refer.sipfrags).toEqual([100, 503]);
    expect(refer.notifies.map((n) => n.subscriptionState)).toEqual(['active', 'terminated']);
    await events.waitFor('ChannelTransfer', (e) => 'state' in e);
    await events.settle();
    expect(transfers().map((e) => e.state ?? null)).toEqual([null, 'channel_declined']);
  });

  it('channel_declined first: 100 then 603', async () => {
    const { bob } = await twoPartyCall();
    const refer = emu.sendRefer(bob, { kind: 'blind', destination: '1002' });
    expect((await progress(bob, 'channel_declined')).status).toBe(204);
    expect(refer.sipfrags).toEqual([100, 603]);
    expect(refer.terminated).toBe(true);
  });

  it('after a terminating state: 204, no NOTIFY, no event (blind-declined)', async () => {
    const { bob } = await twoPartyCall();
    const refer = emu.sendRefer(bob, { kind: 'blind', destination: '1002' });
    await progress(bob, 'channel_progress');
    await progress(bob, 'channel_declined');
    await events.waitFor('ChannelTransfer', (e) => e.state === 'channel_declined');
    const before = events.events.length;
    expect((await progress(bob, 'channel_answered')).status).toBe(204);
    expect((await progress(bob, 'channel_progress')).status).toBe(204);
    await sleep(30);
    expect(refer.sipfrags).toEqual([100, 603]);
    expect(transfers(before)).toEqual([]);
  });

  it('400 "Invalid states value" for an unknown or missing state, and nothing is sent', async () => {
    const { bob } = await twoPartyCall();
    const refer = emu.sendRefer(bob, { kind: 'blind', destination: '1002' });
    for (const states of ['bogus', '', undefined]) {
      const res = await progress(bob, states);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ message: 'Invalid states value' });
    }
    expect(refer.sipfrags).toEqual([]);
  });

  it('404 once the channel is gone', async () => {
    const { bob } = await twoPartyCall();
    emu.sendRefer(bob, { kind: 'blind', destination: '1002' });
    await progress(bob, 'channel_progress');
    emu.phoneHangsUp(bob);
    const res = await progress(bob, 'channel_answered');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ message: 'Channel not found' });
  });

  it('409 for a channel that is not in Stasis', async () => {
    emu.setEndpoint('dave', { kind: 'no-answer' });
    const dave = emu.originate({ endpoint: 'PJSIP/dave', app: emu.app });
    const res = await progress(dave.id, 'channel_progress');
    expect(res.status).toBe(409);
    expect(res.body).toEqual({ message: 'Channel not in Stasis application' });
  });

  it('204 and no event when no REFER is pending', async () => {
    const { alice } = await twoPartyCall();
    const before = events.events.length;
    expect((await progress(alice, 'channel_answered')).status).toBe(204);
    await sleep(30);
    expect(transfers(before)).toEqual([]);
    expect(emu.refers).toEqual([]);
  });
});

describe('the transferer hangs up with the subscription still active', () => {
  it('before any progress (ARI hangup): 100 + 503 and a second ChannelTransfer without state, before ChannelDestroyed', async () => {
    const { bob } = await twoPartyCall();
    const refer = emu.sendRefer(bob, { kind: 'blind', destination: '1002' });
    await events.waitFor('ChannelTransfer');
    const since = events.events.length;
    expect((await ari(emu, 'DELETE', `/channels/${bob}`)).status).toBe(204);
    // The hangup itself follows the 204 on the channel's thread.
    await events.waitFor('ChannelDestroyed', (e) => (e.channel as { id: string }).id === bob, since);
    expect(refer.sipfrags).toEqual([100, 503]);
    expect(refer.terminated).toBe(true);
    const order = events.events
      .slice(since)
      .filter((e) => ['ChannelHangupRequest', 'ChannelLeftBridge', 'StasisEnd', 'ChannelTransfer', 'ChannelDestroyed'].includes(e.type))
      .map((e) => e.type);
    // bob is an inbound call here: the PBX's own HangupRequest comes after StasisEnd.
    expect(order).toEqual([
      'ChannelHangupRequest',
      'ChannelLeftBridge',
      'StasisEnd',
      'ChannelHangupRequest',
      'ChannelTransfer',
      'ChannelDestroyed',
    ]);
    const second = events.events.slice(since).find((e) => e.type === 'ChannelTransfer')!;
    expect('state' in second).toBe(false);
    expect(Object.keys(second.referred_by as object)).toEqual(['source_channel']);
  });

  it('before any progress (the phone hangs up): the same 100 + 503 and second event', async () => {
    const { bob } = await twoPartyCall();
    const refer = emu.sendRefer(bob, { kind: 'blind', destination: '1002' });
    emu.phoneHangsUp(bob);
    expect(refer.sipfrags).toEqual([100, 503]);
    await events.waitFor('ChannelDestroyed', (e) => (e.channel as { id: string }).id === bob);
    expect(transfers().filter((e) => !('state' in e))).toHaveLength(2);
  });

  it('after progress: only 503, and a last ChannelTransfer repeating channel_progress (blind-bye-after-progress)', async () => {
    const { bob } = await twoPartyCall();
    const refer = emu.sendRefer(bob, { kind: 'blind', destination: '1002' });
    await progress(bob, 'channel_progress');
    emu.phoneHangsUp(bob);
    expect(refer.notifies).toEqual([
      { code: 100, subscriptionState: 'active' },
      { code: 503, subscriptionState: 'terminated' },
    ]);
    await events.waitFor('ChannelDestroyed', (e) => (e.channel as { id: string }).id === bob);
    expect(transfers().map((e) => e.state ?? null)).toEqual([null, 'channel_progress', 'channel_progress']);
    expect(Object.keys(transfers()[2]!.referred_by as object)).toEqual(['source_channel']);
  });

  it('after a terminating state: a hangup sends nothing more (blind-noprogress-long)', async () => {
    const { bob } = await twoPartyCall();
    const refer = emu.sendRefer(bob, { kind: 'blind', destination: '1002' });
    await progress(bob, 'channel_answered');
    emu.phoneHangsUp(bob);
    expect(refer.sipfrags).toEqual([100, 200]);
  });
});

describe('subscription expiry and event contents', () => {
  it('the implicit subscription expires with "SIP/2.0 0" and no event; later progress is ignored (blind-expires)', async () => {
    const { bob } = await twoPartyCall();
    const refer = emu.sendRefer(bob, { kind: 'blind', destination: '1002', expires: 0.05 });
    await events.waitFor('ChannelTransfer');
    expect(await refer.waitForTermination(1000)).toEqual([0]);
    const before = events.events.length;
    expect((await progress(bob, 'channel_answered')).status).toBe(204);
    await sleep(30);
    expect(refer.sipfrags).toEqual([0]);
    expect(transfers(before)).toEqual([]);
  });

  it('waitForTermination rejects listing what the phone received', async () => {
    const { bob } = await twoPartyCall();
    const refer = emu.sendRefer(bob, { kind: 'blind', destination: '1002' });
    await progress(bob, 'channel_progress');
    await expect(refer.waitForTermination(50)).rejects.toThrow(/sipfrags received so far: \[100\]/);
  });

  it('echoes carry fresh snapshots: what left drops out (attended channel_answered echo)', async () => {
    const { bob, alice, bridge } = await twoPartyCall();
    emu.sendRefer(bob, { kind: 'blind', destination: '1002' });
    const first = await events.waitFor('ChannelTransfer');
    const by = first.referred_by as { connected_channel: { id: string }; bridge: { id: string } };
    expect(by.connected_channel.id).toBe(alice);
    expect(by.bridge.id).toBe(bridge);
    emu.removeFromBridge(bridge, bob);
    await progress(bob, 'channel_progress');
    const echo = await events.waitFor('ChannelTransfer', (e) => e.state === 'channel_progress');
    expect(Object.keys(echo.referred_by as object)).toEqual(['source_channel']);
    expect(echo.refer_to).toEqual({ requested_destination: { destination: '1002' } });
  });

  it('attended, resolvable: destination_channel, connected_channel and bridge of the replaced dialog', async () => {
    const { bob } = await twoPartyCall();
    const consult = emu.phoneCalls({ endpoint: 'bob', exten: '1003' }).id;
    const carol = emu.phoneCalls({ endpoint: 'carol', exten: '300' }).id;
    emu.answer(consult);
    emu.answer(carol);
    emu.createBridge({ id: 'b2' });
    emu.addToBridge('b2', consult);
    emu.addToBridge('b2', carol);
    const d = emu.dialogOf(consult);
    emu.sendRefer(bob, { kind: 'attended', destination: '1003', replaces: { callId: d.callId, fromTag: d.remoteTag, toTag: d.localTag } });
    const ev = await events.waitFor('ChannelTransfer');
    const to = ev.refer_to as Record<string, { id?: string }> & { requested_destination: unknown };
    expect(Object.keys(to)).toEqual(['requested_destination', 'destination_channel', 'connected_channel', 'bridge']);
    expect(to.requested_destination).toEqual({
      destination: '1003',
      protocol_id: d.callId,
      additional_protocol_params: [
        { parameter_name: 'from', parameter_value: d.remoteTag },
        { parameter_name: 'to', parameter_value: d.localTag },
      ],
    });
    expect(to.destination_channel?.id).toBe(consult);
    expect(to.connected_channel?.id).toBe(carol);
    expect(to.bridge?.id).toBe('b2');
  });

  it('attended, not resolvable (or tags that do not match): only requested_destination', async () => {
    const { bob } = await twoPartyCall();
    const consult = emu.phoneCalls({ endpoint: 'bob', exten: '1003' }).id;
    emu.answer(consult);
    const d = emu.dialogOf(consult);
    emu.sendRefer(bob, {
      kind: 'attended',
      destination: '1003',
      replaces: { callId: d.callId, fromTag: d.remoteTag, toTag: d.localTag },
      resolvable: false,
    });
    emu.sendRefer(bob, { kind: 'attended', destination: '1003', replaces: { callId: d.callId, fromTag: 'x', toTag: 'y' } });
    await events.waitFor('ChannelTransfer');
    await sleep(20);
    for (const ev of transfers()) expect(Object.keys(ev.refer_to as object)).toEqual(['requested_destination']);
  });

  it('REFER needs a live, answered PJSIP channel', () => {
    expect(() => emu.sendRefer('nope', { kind: 'blind', destination: '1' })).toThrow(/no live channel/);
    const ringing = emu.phoneCalls({ endpoint: 'zed', exten: '1' }).id;
    expect(() => emu.sendRefer(ringing, { kind: 'blind', destination: '1' })).toThrow(/not answered/);
  });
});
