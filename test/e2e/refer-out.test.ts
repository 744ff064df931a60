// REFER out end to end on the emulator: bob blind-transfers a carrier's call
// to a number off the platform; the call goes back to the carrier (ARI
// redirect), or, when the carrier keeps it, the number is dialled as in any
// blind transfer. The emulator's redirect is modelled on the refer-out traces.
import { afterEach, describe, expect, it } from 'vitest';
import { membersOf, originates, startHarness, twoPartyCall, waitUntil, type Harness, transferFinished } from './harness.js';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

const NUMBER = '0612345678';
const REFER_OUT = {
  TRANSFER_REFER_OUT_ENDPOINTS: 'carrier-.*',
  TRANSFER_REFER_OUT_DESTINATIONS: '0[1-9]\\d{8}',
  TRANSFER_REFER_OUT_TARGET: 'PJSIP/sip:{exten}@carrier.example',
};

/** A carrier's call (endpoint carrier-a) talking to bob. */
async function carrierTalksToBob() {
  h = await startHarness(REFER_OUT);
  const call = await twoPartyCall(h, { a: 'carrier-a', b: 'bob' });
  return { carrier: call.alice, bob: call.bob, bridgeId: call.bridgeId };
}

const referOutSteps = () => h.steps.filter((s) => s.step === 'refer-out').map((s) => s.message);

describe('REFER out', () => {
  it('the carrier takes the call: it is referred to sip:<number>@carrier.example, bob hears 100 then 200 and is hung up, nothing is dialled, nothing is left', async () => {
    const call = await carrierTalksToBob();
    h.emu.setReferAnswer('carrier-a', { kind: 'accept', finalAfterMs: 40 });
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: NUMBER });
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    const summary = await transferFinished(h);
    expect(summary).toMatchObject({ result: 'completed', sipfrags: [100, 200] });
    expect(h.emu.refersOut).toEqual([{ channelId: call.carrier.id, endpoint: 'carrier-a', referTo: `sip:${NUMBER}@carrier.example`, answer: 200 }]);
    expect(originates(h)).toEqual([]);
    // The carrier hung its call up itself; bob was hung up by the service; the emptied bridge is gone.
    expect(h.emu.hangups.map((x) => [x.channelId, x.by])).toEqual([
      [call.carrier.id, 'phone'],
      [call.bob.id, 'ari'],
    ]);
    expect(h.emu.channels()).toEqual([]);
    expect(h.emu.bridges()).toEqual([]);
    expect(referOutSteps()).toEqual(['call sent back to its carrier: Asterisk REFERs it', 'the carrier took the call: its call left Asterisk']);
  });

  it('the carrier refuses: back in its bridge, the number dialled instead; bob hears 100 then 200, the carrier\'s call talks to the new leg', async () => {
    const call = await carrierTalksToBob();
    h.emu.setReferAnswer('carrier-a', { kind: 'refuse', status: 403 });
    h.emu.setEndpoint(NUMBER, { kind: 'answer', afterMs: 20 });
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: NUMBER });
    // The carrier is given REFER_OUT_BYE_GRACE_MS (2 s) to hang up after refusing: ARI cannot tell a refusal apart sooner.
    expect(await refer.waitForTermination(6000)).toEqual([100, 200]);
    const summary = await transferFinished(h, 1, 6000);
    expect(summary).toMatchObject({ result: 'completed', sipfrags: [100, 200] });
    expect(h.emu.refersOut.map((r) => [r.referTo, r.answer])).toEqual([[`sip:${NUMBER}@carrier.example`, 403]]);
    expect(originates(h).map((r) => r.query.endpoint)).toEqual([`PJSIP/${NUMBER}`]);
    const leg = h.emu.channels().find((c) => c.id.startsWith('transfer-'))!;
    expect(membersOf(h, call.bridgeId)).toEqual([call.carrier.id, leg.id].sort());
    expect(h.emu.channel(call.bob.id)).toBeUndefined();
    // The carrier's call is not left hearing ringback on top of the new call.
    expect(h.emu.channel(call.carrier.id)?.ringing).toBe(false);
    expect(referOutSteps()).toEqual([
      'call sent back to its carrier: Asterisk REFERs it',
      'the carrier did not take the call: it is back in its bridge',
      'the carrier kept the call: dialling the destination instead',
    ]);
  });

  it('a phone\'s call, or a destination on the platform: no REFER, the destination is dialled as before', async () => {
    h = await startHarness(REFER_OUT);
    const phones = await twoPartyCall(h);
    h.emu.setEndpoint(NUMBER, { kind: 'answer', afterMs: 5 });
    expect(await h.emu.sendRefer(phones.bob.id, { kind: 'blind', destination: NUMBER }).waitForTermination()).toEqual([100, 200]);
    await transferFinished(h);

    const carrier = await twoPartyCall(h, { a: 'carrier-b', b: 'dave' }, 'carrier-bridge');
    h.emu.setEndpoint('1003', { kind: 'answer', afterMs: 5 });
    expect(await h.emu.sendRefer(carrier.bob.id, { kind: 'blind', destination: '1003' }).waitForTermination()).toEqual([100, 200]);
    await transferFinished(h, 2);
    expect(h.emu.refersOut).toEqual([]);
    expect(originates(h).map((r) => r.query.endpoint)).toEqual([`PJSIP/${NUMBER}`, 'PJSIP/1003']);
  });

  it('the carrier hangs up while referred, before answering: counted as taken (ARI cannot tell it apart), bob hears 200', async () => {
    const call = await carrierTalksToBob();
    // No answer from the far end within the test: the REFER stays pending.
    h.emu.setReferAnswer('carrier-a', { kind: 'accept', finalAfterMs: 60_000 });
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: NUMBER });
    await waitUntil(() => h.emu.refersOut.length === 1, 'the REFER to go out');
    h.emu.phoneHangsUp(call.carrier.id);
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await transferFinished(h);
    expect(originates(h)).toEqual([]);
    expect(h.emu.channels()).toEqual([]);
  });
});
