// Transfers between calls the service routed itself (ROUTING=dial), as on
// a small PBX: alice calls bob; bob puts her on hold and calls carol; bob
// transfers, either after carol answered (attended) or while she still
// rings (semi-attended).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EmulatedChannel } from '../emulator/index.js';
import { membersOf, replacesFor, startHarness, waitUntil, type Harness, transferFinished } from './harness.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness({ ROUTING: 'dial' });
});
afterEach(async () => {
  await h.close();
});

const sorted = (...ids: string[]) => ids.slice().sort();

/** The leg the router placed to `endpoint`. */
function legTo(endpoint: string): EmulatedChannel | undefined {
  return h.emu.channels().find((c) => c.id.startsWith('route-') && c.name.startsWith(`PJSIP/${endpoint}-`));
}

/** alice calls bob, bob answers: returns alice's channel, bob's leg and their bridge. */
async function aliceCallsBob() {
  h.emu.setEndpoint('bob', { kind: 'answer', afterMs: 5 });
  const alice = h.emu.phoneCalls({ endpoint: 'alice', exten: 'bob', callerName: 'Alice' });
  await waitUntil(() => legTo('bob')?.bridgeId !== undefined && h.emu.channel(alice.id)?.bridgeId !== undefined, 'alice and bob to be connected');
  const bobLeg = legTo('bob')!;
  return { alice, bobLeg, bridgeId: bobLeg.bridgeId! };
}

describe('transfers of routed calls', () => {
  it('attended: alice held, bob consults carol, transfers: alice talks to carol, no music, nothing left over', async () => {
    const { alice, bobLeg, bridgeId } = await aliceCallsBob();
    h.emu.phoneHolds(bobLeg.id);
    await waitUntil(() => h.emu.channel(alice.id)?.mohPlaying === true, 'alice to hear music on hold');

    h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 5 });
    const consult = h.emu.phoneCalls({ endpoint: 'bob', exten: 'carol', callerName: 'Bob' });
    await waitUntil(() => legTo('carol')?.bridgeId !== undefined, 'bob and carol to be connected');
    const carolLeg = legTo('carol')!;
    const consultBridge = carolLeg.bridgeId!;

    // Like many phones, bob holds the consultation call before transferring.
    h.emu.phoneHolds(consult.id);
    await waitUntil(() => h.emu.channel(carolLeg.id)?.mohPlaying === true, 'carol to hear music on hold');

    const refer = h.emu.sendRefer(bobLeg.id, { kind: 'attended', destination: 'carol', replaces: replacesFor(h, consult.id) });
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await transferFinished(h);

    expect(membersOf(h, consultBridge)).toEqual(sorted(alice.id, carolLeg.id));
    expect(h.emu.channel(alice.id)?.mohPlaying).toBe(false);
    expect(h.emu.channel(carolLeg.id)?.mohPlaying).toBe(false);
    expect(h.emu.bridge(bridgeId)).toBeUndefined();
    expect(h.emu.channels().map((c) => c.id).sort()).toEqual(sorted(alice.id, carolLeg.id));

    // The new call ends like any other: alice hangs up, carol is hung up.
    h.emu.phoneHangsUp(alice.id);
    await waitUntil(() => h.emu.channels().length === 0 && h.emu.bridges().length === 0, 'the call to be cleared');
    // The registry learns of the last bridge's end from BridgeDestroyed, which may follow the DELETE's 204.
    await waitUntil(async () => (await h.service.registry.store.counts()).bridges === 0, 'the registry to see the bridge go');
    expect(await h.service.registry.store.counts()).toEqual({ channels: 0, bridges: 0, callIds: 0 });
  });

  it('attended, REFER the instant the consultation call is answered: 100 then 200, alice talks to carol', async () => {
    const { alice, bobLeg, bridgeId } = await aliceCallsBob();
    h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 5 });
    const consult = h.emu.phoneCalls({ endpoint: 'bob', exten: 'carol', callerName: 'Bob' });
    // bob's phone REFERs as soon as its consultation call is answered (the 200 OK the router's answer sends).
    let refer: ReturnType<typeof h.emu.sendRefer> | undefined;
    h.emu.beforeNext({
      method: 'POST',
      path: new RegExp(`/channels/${consult.id}/answer$`),
      run: () => {
        refer = h.emu.sendRefer(bobLeg.id, { kind: 'attended', destination: 'carol', replaces: replacesFor(h, consult.id) });
      },
    });
    await waitUntil(() => refer !== undefined, 'the consultation call to be answered');
    expect(await refer!.waitForTermination()).toEqual([100, 200]);
    await transferFinished(h);
    const carolLeg = legTo('carol')!;
    expect(membersOf(h, carolLeg.bridgeId!)).toEqual(sorted(alice.id, carolLeg.id));
    expect(h.emu.bridge(bridgeId)).toBeUndefined();
    expect(h.emu.channels().map((c) => c.id).sort()).toEqual(sorted(alice.id, carolLeg.id));
  });

  it('semi-attended: bob transfers while carol still rings; when she answers she talks to alice', async () => {
    const { alice, bobLeg, bridgeId } = await aliceCallsBob();
    h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 200 });
    const consult = h.emu.phoneCalls({ endpoint: 'bob', exten: 'carol', callerName: 'Bob' });
    await waitUntil(() => legTo('carol')?.state === 'Ringing', 'carol to ring');
    const carolLeg = legTo('carol')!;
    expect(h.emu.channel(consult.id)?.state).not.toBe('Up');

    const refer = h.emu.sendRefer(bobLeg.id, { kind: 'attended', destination: 'carol', replaces: replacesFor(h, consult.id) });
    await waitUntil(() => h.emu.channel(alice.id)?.ringing === true, 'alice to hear carol ringing');
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await transferFinished(h);

    expect(membersOf(h, bridgeId)).toEqual(sorted(alice.id, carolLeg.id));
    expect(h.emu.channel(alice.id)?.ringing).toBe(false);
    // bob's two legs are gone; the consultation call was never answered.
    expect(h.emu.channel(bobLeg.id)).toBeUndefined();
    expect(h.emu.channel(consult.id)).toBeUndefined();
    expect(h.emu.channels().map((c) => c.id).sort()).toEqual(sorted(alice.id, carolLeg.id));
    expect(h.logs.lines.some((l) => l.msg === 'semi-attended transfer planned: the ringing leg goes to the transferee')).toBe(true);
  });

  it('semi-attended: the ringing consultation call is hung up only once Asterisk has echoed the 200, however late', async () => {
    const { alice, bobLeg, bridgeId } = await aliceCallsBob();
    h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 100 });
    const consult = h.emu.phoneCalls({ endpoint: 'bob', exten: 'carol', callerName: 'Bob' });
    await waitUntil(() => legTo('carol')?.state === 'Ringing', 'carol to ring');
    const carolLeg = legTo('carol')!;
    // Asterisk answers the request for the 200 at once, but its echo (the NOTIFY being
    // built from the replaced leg) reaches the service only 200 ms later, as under load.
    h.emu.respondFirst({ method: 'POST', path: /\/transfer_progress$/, query: { states: 'channel_answered' }, eventsAfterMs: 200 });
    const echoReceived = () => h.logs.lines.some((l) => l.msg === 'transfer progress echoed by Asterisk' && l.state === 'channel_answered');
    let echoedAtHangup: boolean | undefined;
    h.emu.beforeNext({ method: 'DELETE', path: new RegExp(`^/channels/${consult.id}$`), run: () => (echoedAtHangup = echoReceived()) });
    const refer = h.emu.sendRefer(bobLeg.id, { kind: 'attended', destination: 'carol', replaces: replacesFor(h, consult.id) });
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await transferFinished(h);
    expect(echoedAtHangup).toBe(true);
    expect(membersOf(h, bridgeId)).toEqual(sorted(alice.id, carolLeg.id));
    expect(h.emu.channels().map((c) => c.id).sort()).toEqual(sorted(alice.id, carolLeg.id));
  });

  it('semi-attended, target busy: 503, alice is back with bob, the consultation call is hung up', async () => {
    const { alice, bobLeg, bridgeId } = await aliceCallsBob();
    h.emu.setEndpoint('carol', { kind: 'busy', afterMs: 150 });
    const consult = h.emu.phoneCalls({ endpoint: 'bob', exten: 'carol', callerName: 'Bob' });
    await waitUntil(() => legTo('carol')?.state === 'Ringing', 'carol to ring');

    const refer = h.emu.sendRefer(bobLeg.id, { kind: 'attended', destination: 'carol', replaces: replacesFor(h, consult.id) });
    expect(await refer.waitForTermination()).toEqual([100, 503]);
    await transferFinished(h);

    expect(membersOf(h, bridgeId)).toEqual(sorted(alice.id, bobLeg.id));
    expect(h.emu.channel(alice.id)?.ringing).toBe(false);
    await waitUntil(() => h.emu.channel(consult.id) === undefined, 'the consultation call to be hung up');
    expect(h.emu.channels().map((c) => c.id).sort()).toEqual(sorted(alice.id, bobLeg.id));
  });

  it('blind: bob transfers alice to carol and the transferred call later ends cleanly', async () => {
    const { alice, bobLeg, bridgeId } = await aliceCallsBob();
    h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 20 });
    const refer = h.emu.sendRefer(bobLeg.id, { kind: 'blind', destination: 'carol' });
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await transferFinished(h);
    const carol = h.emu.channels().find((c) => c.name.startsWith('PJSIP/carol-'))!;
    expect(membersOf(h, bridgeId)).toEqual(sorted(alice.id, carol.id));

    h.emu.phoneHangsUp(carol.id);
    await waitUntil(() => h.emu.channels().length === 0 && h.emu.bridges().length === 0, 'the call to be cleared');
  });

  it('blind, target busy after bob already hung up: alice is not left alone in silence', async () => {
    const { alice, bobLeg } = await aliceCallsBob();
    h.emu.setEndpoint('carol', { kind: 'busy', afterMs: 100 });
    const refer = h.emu.sendRefer(bobLeg.id, { kind: 'blind', destination: 'carol' });
    await waitUntil(() => refer.sipfrags.length === 1, '100 Trying');
    h.emu.phoneHangsUp(bobLeg.id);
    await transferFinished(h);
    // Nobody to go back to: the call is over for alice too.
    await waitUntil(() => h.emu.channel(alice.id) === undefined && h.emu.bridges().length === 0, 'alice to be hung up');
    expect(h.emu.channels()).toEqual([]);
  });

  it('blind, the transferee hangs up while the target rings: nothing is left behind', async () => {
    const { alice, bobLeg } = await aliceCallsBob();
    h.emu.setEndpoint('carol', { kind: 'no-answer' });
    const refer = h.emu.sendRefer(bobLeg.id, { kind: 'blind', destination: 'carol' });
    await waitUntil(() => h.emu.channels().some((c) => c.id.startsWith('transfer-') && c.state === 'Ringing'), 'carol to ring');
    h.emu.phoneHangsUp(alice.id);
    expect(await refer.waitForTermination()).toEqual([100, 503]);
    await waitUntil(() => h.emu.channels().length === 0 && h.emu.bridges().length === 0, 'everything to be cleared');
    await waitUntil(async () => (await h.service.registry.store.counts()).channels === 0, 'the registry to empty');
  });

  it('blind, bob hangs up right after 100 Trying, before carol is dialled: the transfer goes on', async () => {
    const { alice, bobLeg, bridgeId } = await aliceCallsBob();
    h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 30 });
    // bob's hangup arrives while the transfer is still planning and checking
    // the destination: the router must leave the call alone.
    const refer = h.emu.sendRefer(bobLeg.id, { kind: 'blind', destination: 'carol' });
    await waitUntil(() => refer.sipfrags.length === 1, '100 Trying');
    h.emu.phoneHangsUp(bobLeg.id);
    await transferFinished(h);
    expect(h.finished[0]).toMatchObject({ result: 'completed' });
    const carol = h.emu.channels().find((c) => c.name.startsWith('PJSIP/carol-'))!;
    expect(membersOf(h, bridgeId)).toEqual(sorted(alice.id, carol.id));
  });

  it('blind, bob gone, Asterisk answers the move before it reports carol in the call: alice still talks to carol', async () => {
    const { alice, bobLeg, bridgeId } = await aliceCallsBob();
    h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 5 });
    const refer = h.emu.sendRefer(bobLeg.id, { kind: 'blind', destination: 'carol' });
    await waitUntil(() => refer.sipfrags.length === 1, '100 Trying');
    h.emu.phoneHangsUp(bobLeg.id);
    await waitUntil(() => h.emu.channel(bobLeg.id) === undefined, 'bob to be gone');
    // The transfer ends while carol's ChannelEnteredBridge is still on its way: the
    // router must not take alice for the last party of the call.
    h.emu.respondFirst({ method: 'POST', path: new RegExp(`^/bridges/${bridgeId}/addChannel$`), eventsAfterMs: 150 });
    await transferFinished(h);
    expect(h.finished[0]).toMatchObject({ result: 'completed' });
    const carol = h.emu.channels().find((c) => c.name.startsWith('PJSIP/carol-'))!;
    expect(membersOf(h, bridgeId)).toEqual(sorted(alice.id, carol.id));
    expect(h.emu.hangups.map((x) => x.channelId)).toEqual([bobLeg.id]);

    h.emu.phoneHangsUp(alice.id);
    await waitUntil(() => h.emu.channels().length === 0 && h.emu.bridges().length === 0, 'the call to be cleared');
  });
});

