// Conformance of the emulator with a real Asterisk, on the shared traces
// (test/fixtures/traces, copied from ../shared/asterisk-traces): each scenario is
// replayed (conformance/replay.ts: the phones by script, the REST calls as recorded)
// and every event and REST answer is compared with the recording, values included.
// The recorder's own traces are in conformance-recorded.test.ts.

import { afterEach, describe, expect, it } from 'vitest';
import { diff, Normaliser, type Json } from './conformance/normalise.js';
import { canonicalRinging, Replay } from './conformance/replay.js';
import { recordedEvents } from './conformance/trace.js';

let r: Replay | undefined;
afterEach(async () => {
  await r?.close();
  r = undefined;
});

/** The traces' setup: app transfer-app (subscribeAll), systemname ari-harness, NoOp then Stasis(app,inbound,exten,endpoint). */
async function start(trace: string): Promise<Replay> {
  r = await Replay.start(
    trace,
    {
      app: 'transfer-app',
      systemName: 'ari-harness',
      callerIds: { alice: '"Alice" <alice>', bob: '"Bob" <bob>', carol: '"Carol" <carol>' },
    },
    [{ app: 'transfer-app', subscribeAll: true }],
  );
  return r;
}

/** A phone of the traces calls `exten`: caller "Name" <endpoint>. */
function phoneCalls(rp: Replay, endpoint: string, exten: string, callId?: string): string {
  const name = endpoint.charAt(0).toUpperCase() + endpoint.slice(1);
  return rp.emu.phoneCalls({ endpoint, exten, callerName: name, args: ['inbound', exten, endpoint], ...(callId ? { callId } : {}) }).id;
}

/** Steps 1-2 of the blind-* traces: alice calls 100, the app bridges her with an originated bob. */
async function aliceAndBob(rp: Replay, bridge: string): Promise<string> {
  phoneCalls(rp, 'alice', '100');
  await rp.replayTo(`POST /bridges/${bridge}/addChannel`);
  await rp.replayTo(`POST /bridges/${bridge}/addChannel`);
  return rp.emu.channels().find((c) => c.name.startsWith('PJSIP/bob'))!.id;
}

describe('conformance with the shared traces', () => {
  it('attended: REFER with Replaces, the app moves alice, progress and answered', async () => {
    const rp = await start('attended');
    phoneCalls(rp, 'alice', '100');
    await rp.replayTo('POST /bridges/att-bridge-1/addChannel');
    const bob1 = phoneCalls(rp, 'bob', '200');
    await rp.replayTo('POST /bridges/att-bridge-1/addChannel');
    const bob2 = phoneCalls(rp, 'bob', '1002', `REMOTE${rp.emu.dialogOf(bob1).callId}`);
    await rp.replayTo('POST /bridges/att-bridge-2/addChannel');
    await rp.replayTo('POST /bridges/att-bridge-2/addChannel'); // carol, originated
    const d = rp.emu.dialogOf(bob2);
    const refer = rp.emu.sendRefer(bob1, {
      kind: 'attended',
      destination: '1002',
      replaces: { callId: d.callId, fromTag: d.remoteTag, toTag: d.localTag },
    });
    await rp.replayTo('POST /channels/ari-harness-1795265273.11/transfer_progress?states=channel_answered');
    rp.emu.phoneHangsUp(bob1);
    await rp.replayRest();
    await rp.settle();
    expect(refer.sipfrags).toEqual([100, 200]);
    rp.compare();
  });

  it('blind-answered: blind ChannelTransfer, progress, a new leg, answered', async () => {
    const rp = await start('blind-answered');
    const bob = await aliceAndBob(rp, 'blind-answered-bridge');
    const refer = rp.emu.sendRefer(bob, { kind: 'blind', destination: '1002' });
    await rp.replayRest();
    await rp.settle();
    expect(refer.sipfrags).toEqual([100, 200]);
    rp.compare();
  });

  it('blind-declined: progress, declined, and a late answered that does nothing', async () => {
    const rp = await start('blind-declined');
    const bob = await aliceAndBob(rp, 'blind-declined-bridge');
    const refer = rp.emu.sendRefer(bob, { kind: 'blind', destination: '1002' });
    await rp.replayRest();
    await rp.settle();
    expect(refer.sipfrags).toEqual([100, 603]);
    // As in blind-noprogress: the app's DELETE /bridges raced alice's hangup.
    const rec = canonicalRinging(recordedEvents('blind-declined'));
    const bobGone = rec.findIndex((e) => e.type === 'ChannelDestroyed') + 1;
    rp.compare({ unorderedFrom: { '': bobGone } });
  });

  it('blind-unavailable: unavailable first (100 added, echo says declined), then 400 for a bogus state', async () => {
    const rp = await start('blind-unavailable');
    const bob = await aliceAndBob(rp, 'blind-unavailable-bridge');
    const refer = rp.emu.sendRefer(bob, { kind: 'blind', destination: '1002' });
    await rp.replayRest();
    await rp.settle();
    expect(refer.sipfrags).toEqual([100, 503]);
    rp.compare();
  });

  it('blind-noprogress: the app hangs up the transferer first, a second ChannelTransfer without state', async () => {
    const rp = await start('blind-noprogress');
    const bob = await aliceAndBob(rp, 'blind-noprogress-bridge');
    const refer = rp.emu.sendRefer(bob, { kind: 'blind', destination: '1002' });
    await rp.waitEvent('ChannelTransfer');
    expect(refer.sipfrags).toEqual([]); // ari-only: no NOTIFY at all until the app acts
    await rp.replayRest();
    await rp.settle();
    expect(refer.sipfrags).toEqual([100, 503]);
    // In the recording the app's DELETE /bridges raced alice's hangup (BridgeDestroyed lands
    // between her StasisEnd and her last HangupRequest); the emulator finishes the hangup
    // first. After bob's ChannelDestroyed the order is not compared.
    const rec = canonicalRinging(recordedEvents('blind-noprogress'));
    const bobGone = rec.findIndex((e) => e.type === 'ChannelDestroyed') + 1;
    rp.compare({ unorderedFrom: { '': bobGone } });
  });

  it('blind-noprogress-long: the subscription expires (sipfrag 0, no event), the later hangup sends nothing', async () => {
    const rp = await start('blind-noprogress-long');
    const bob = await aliceAndBob(rp, 'blind-noprogress-long-bridge');
    // 600 s in the recording; the same expiry with a 1 s REFER Expires.
    const refer = rp.emu.sendRefer(bob, { kind: 'blind', destination: '1002', expires: 1 });
    expect(await refer.waitForTermination(3000)).toEqual([0]);
    await rp.replayRest();
    await rp.settle();
    expect(refer.sipfrags).toEqual([0]);
    const rec = canonicalRinging(recordedEvents('blind-noprogress-long'));
    const bobGone = rec.findIndex((e) => e.type === 'ChannelDestroyed') + 1;
    rp.compare({ unorderedFrom: { '': bobGone } });
  });

  it('blind-expires: Expires 15 ends the subscription with sipfrag 0; answered afterwards does nothing', async () => {
    const rp = await start('blind-expires');
    const bob = await aliceAndBob(rp, 'blind-expires-bridge');
    // 15 s in the recording; the same path with 1 s.
    const refer = rp.emu.sendRefer(bob, { kind: 'blind', destination: '1002', expires: 1 });
    expect(await refer.waitForTermination(3000)).toEqual([0]);
    await rp.replayRest();
    await rp.settle();
    expect(refer.notifies).toEqual([{ code: 0, subscriptionState: 'terminated' }]);
    rp.compare();
  });

  it('callid-local: a Local channel has no Call-ID (500, protocol_id "")', async () => {
    const rp = await start('callid-local');
    await rp.replayRest();
    await rp.settle();
    rp.compare();
  });
});

describe('the comparator itself', () => {
  const norm = (j: Json) => new Normaliser().normalise(j);

  it('notices a missing key, a wrong type and a wrong value', () => {
    expect(diff({ a: 1, b: 2 }, { a: 1 })).toEqual(['$: keys recorded [a,b], emulator [a]']);
    expect(diff({ cause: 16 }, { cause: '16' })).toEqual(['$.cause: recorded 16, emulator "16"']);
    expect(diff({ soft: true }, { soft: false })).toEqual(['$.soft: recorded true, emulator false']);
  });

  it('maps identities to tokens by first appearance, so references must agree', () => {
    const rec = { channel: { id: 'x.1', name: 'PJSIP/bob-0000000b' }, bridge: { id: 'b', channels: ['x.1'] } };
    const same = { channel: { id: 'e.7', name: 'PJSIP/bob-00000002' }, bridge: { id: 'b2', channels: ['e.7'] } };
    const wrong = { channel: { id: 'e.7', name: 'PJSIP/bob-00000002' }, bridge: { id: 'b2', channels: ['e.8'] } };
    expect(diff(norm(rec), norm(same))).toEqual([]);
    expect(diff(norm(rec), norm(wrong))).toEqual(['$.bridge.channels[0]: recorded "<id1>", emulator "<id3>"']);
  });

  it('compares caller, connected, technology and states literally', () => {
    const a = { caller: { name: 'Alice', number: 'alice' }, technology: 'native_rtp', state: 'Up' };
    const b = { caller: { name: 'Alice', number: 'alice' }, technology: 'simple_bridge', state: 'Ring' };
    expect(diff(norm(a), norm(b))).toEqual([
      '$.technology: recorded "native_rtp", emulator "simple_bridge"',
      '$.state: recorded "Up", emulator "Ring"',
    ]);
  });

  it('checks the format of timestamps it ignores', () => {
    const n = new Normaliser();
    n.normalise({ timestamp: '2026-11-21T12:47:51.700Z' });
    expect(n.problems).toEqual(['$.timestamp: "2026-11-21T12:47:51.700Z" is not an Asterisk timestamp']);
  });
});
