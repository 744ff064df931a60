// Hold → music on hold, end to end (the service against the ARI emulator).
// With ROUTING=dial the service owns the calls, so when a phone puts its
// call on hold (ChannelHold) the party it left hears music on hold until
// the phone resumes (ChannelUnhold); a transfer stops music nobody should
// hear any more. With ROUTING=none what the parties hear is another
// application's business.
import { afterEach, describe, expect, it } from 'vitest';
import type { RequestRecord } from '../emulator/index.js';
import { originates, membersOf, startHarness, waitUntil, type Harness, transferFinished } from './harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function start(env: Record<string, string> = {}): Promise<Harness> {
  h = await startHarness({ ROUTING: 'dial', ...env });
  return h;
}

const sorted = (...ids: string[]) => ids.slice().sort();


function mohRequests(hh: Harness): RequestRecord[] {
  return hh.emu.requests.filter((r) => /\/moh$/.test(r.path));
}

/** A phone calls `callee` through the router and the call gets connected. */
async function routedCall(hh: Harness, caller: string, callee: string) {
  const before = originates(hh).length;
  const call = hh.emu.phoneCalls({ endpoint: caller, exten: callee });
  await waitUntil(() => originates(hh).length > before, `the service to dial ${callee}`);
  const legId = /^\/channels\/([^/]+)$/.exec(originates(hh)[before]!.path)![1]!;
  await waitUntil(() => {
    const b = hh.emu.channel(call.id)?.bridgeId;
    return b !== undefined && membersOf(hh, b)?.length === 2 && hh.emu.channel(legId)?.bridgeId === b;
  }, `${caller} and ${callee} to be bridged`);
  await waitUntil(() => hh.logs.lines.some((l) => l.msg === 'call connected' && l.calleeChannelId === legId), 'the router to finish connecting');
  return { callerId: call.id, legId, bridgeId: hh.emu.channel(call.id)!.bridgeId! };
}

/** Events are applied in arrival order: once a later call is known, every earlier event was handled (ROUTING=none only). */
async function serviceCaughtUp(hh: Harness): Promise<void> {
  const sentinel = hh.emu.phoneCalls({ endpoint: 'sentinel', exten: '999' });
  await waitUntil(async () => (await hh.service.registry.store.getChannel(sentinel.id)) !== undefined, 'the service to see the sentinel call');
}

describe('hold on a routed call (ROUTING=dial)', () => {
  it('a REFER right behind a hold does not wait for the music on hold request: 100 Trying goes out while Asterisk is still answering it', async () => {
    const { emu } = await start();
    const call = await routedCall(h!, 'alice', 'carol');
    // Asterisk takes 400 ms over the music request.
    emu.delayNext({ method: 'POST', path: new RegExp(`^/channels/${call.legId}/moh$`), delayMs: 400 });
    emu.setEndpoint('dave', { kind: 'answer', afterMs: 50 });
    emu.phoneHolds(call.callerId);
    const refer = emu.sendRefer(call.callerId, { kind: 'blind', destination: 'dave' });
    await waitUntil(() => refer.sipfrags.length === 1, '100 Trying');
    // The music request has not been answered yet.
    expect(mohRequests(h!).filter((r) => r.method === 'POST')).toEqual([]);
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await transferFinished(h!);
    // Asterisk carried the music requests out in order: carol talks to dave without music.
    await waitUntil(() => ['POST', 'DELETE'].every((m) => mohRequests(h!).some((r) => r.method === m && r.path === `/channels/${call.legId}/moh`)), 'both music requests to be answered');
    const dave = emu.channels().find((c) => c.name.startsWith('PJSIP/dave-'))!;
    expect(membersOf(h!, call.bridgeId)).toEqual(sorted(call.legId, dave.id));
    expect(emu.channel(call.legId)?.mohPlaying).toBe(false);
  });

  it('the caller holds: the callee hears music on hold (MOH_CLASS) until the caller resumes', async () => {
    const { emu } = await start({ MOH_CLASS: 'jazz' });
    const call = await routedCall(h!, 'alice', 'carol');
    expect(emu.channel(call.legId)?.mohPlaying).toBe(false);

    emu.phoneHolds(call.callerId);
    // Asterisk starts the holder's moh_suggest class itself; the service's MOH_CLASS replaces it a moment later.
    await waitUntil(() => emu.channel(call.legId)?.mohPlaying === true && emu.channel(call.legId)?.mohClass === 'jazz', 'carol to hear jazz on hold');
    // The phone that holds plays its own nothing; only the party left hears music.
    expect(emu.channel(call.callerId)?.mohPlaying).toBe(false);
    // Still one call: nobody moved, nobody hung up.
    expect(membersOf(h!, call.bridgeId)).toEqual(sorted(call.callerId, call.legId));
    expect(emu.hangups).toEqual([]);
    // The service logs once Asterisk answered, a moment after the music starts.
    await waitUntil(() => h!.logs.lines.some((l) => l.msg === 'music on hold started'), 'the music to be logged');
    expect(h!.logs.lines.find((l) => l.msg === 'music on hold started')).toMatchObject({
      heldChannelId: call.callerId,
      channelId: call.legId,
      mohClass: 'jazz',
    });

    emu.phoneUnholds(call.callerId);
    await waitUntil(() => emu.channel(call.legId)?.mohPlaying === false, 'the music to stop');
    expect(emu.channel(call.legId)?.mohClass).toBeUndefined();
    await waitUntil(() => h!.logs.lines.some((l) => l.msg === 'music on hold stopped'), 'the music stop to be logged');
    expect(h!.logs.lines.find((l) => l.msg === 'music on hold stopped')).toMatchObject({ heldChannelId: call.callerId, channelId: call.legId });
    expect(membersOf(h!, call.bridgeId)).toEqual(sorted(call.callerId, call.legId));
  });

  it('the callee holds: the caller hears music on hold (default class) until the callee resumes', async () => {
    const { emu } = await start();
    const call = await routedCall(h!, 'alice', 'carol');

    emu.phoneHolds(call.legId);
    await waitUntil(() => emu.channel(call.callerId)?.mohPlaying === true, 'alice to hear music on hold');
    expect(emu.channel(call.callerId)?.mohClass).toBe('default');
    expect(emu.channel(call.legId)?.mohPlaying).toBe(false);

    emu.phoneUnholds(call.legId);
    await waitUntil(() => emu.channel(call.callerId)?.mohPlaying === false, 'the music to stop');
  });

  it('the call ends while on hold: both are hung up, the bridge deleted, nothing left', async () => {
    const { emu } = await start();
    const call = await routedCall(h!, 'alice', 'carol');
    emu.phoneHolds(call.callerId);
    await waitUntil(() => emu.channel(call.legId)?.mohPlaying === true, 'carol to hear music on hold');

    emu.phoneHangsUp(call.callerId);
    await waitUntil(() => emu.channels().length === 0 && emu.bridges().length === 0, 'the call to be torn down');
    expect(emu.hangups.map((x) => x.channelId)).toEqual([call.callerId, call.legId]);
    await waitUntil(async () => {
      const c = await h!.service.registry.store.counts();
      return c.channels === 0 && c.bridges === 0;
    }, 'the registry to be empty');
  });

  it('music started on hold is stopped when that party is blind-transferred; nobody who talks hears music', async () => {
    const { emu } = await start();
    // alice calls bob through the router; the leg to bob is bob's side of the call.
    const call = await routedCall(h!, 'alice', 'bob');
    const alice = call.callerId;
    const bobLeg = call.legId;

    emu.phoneHolds(bobLeg);
    await waitUntil(() => emu.channel(alice)?.mohPlaying === true, 'alice to hear music on hold');

    emu.setEndpoint('carol', { kind: 'no-answer' });
    const refer = emu.sendRefer(bobLeg, { kind: 'blind', destination: 'carol' });
    await waitUntil(() => originates(h!).length === 2, 'the service to dial carol');
    const carolLeg = /^\/channels\/([^/]+)$/.exec(originates(h!)[1]!.path)![1]!;
    await waitUntil(() => emu.channel(carolLeg)?.state === 'Ringing', 'carol to ring');
    // While carol rings alice hears her ringing, not the music of bob's hold.
    await waitUntil(() => emu.channel(alice)?.ringing === true, 'alice to hear carol ringing');
    expect(emu.channel(alice)?.mohPlaying).toBe(false);

    emu.phoneAnswers(carolLeg);
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await transferFinished(h!);
    expect(h!.finished[0]).toMatchObject({ kind: 'blind', result: 'completed', sipfrags: [100, 200], sourceChannelId: bobLeg });

    await waitUntil(() => emu.channel(bobLeg) === undefined, "bob's leg to be hung up");
    expect(membersOf(h!, call.bridgeId)).toEqual(sorted(alice, carolLeg));
    expect(emu.channel(carolLeg)?.endpoint).toBe('carol');
    expect(emu.hangups.map((x) => [x.channelId, x.by])).toEqual([[bobLeg, 'ari']]);
    // alice and carol talk: no music, no ringing for either.
    expect(emu.channel(alice)).toMatchObject({ mohPlaying: false, ringing: false });
    expect(emu.channel(carolLeg)).toMatchObject({ mohPlaying: false, ringing: false });
    expect((await h!.service.registry.store.getChannel(alice))?.mohByService).toBe(false);
  });
});

describe('hold with ROUTING=none', () => {
  it('ChannelHold does nothing: no music is started or stopped', async () => {
    const { emu } = await start({ ROUTING: 'none' });
    const alice = emu.phoneCalls({ endpoint: 'alice', exten: '100' });
    const bob = emu.phoneCalls({ endpoint: 'bob', exten: '200' });
    emu.answer(alice.id);
    emu.answer(bob.id);
    const bridge = emu.createBridge({ name: 'another-apps-call' });
    emu.addToBridge(bridge.id, alice.id);
    emu.addToBridge(bridge.id, bob.id);
    await waitUntil(async () => (await h!.service.registry.store.getChannel(bob.id))?.bridgeId === bridge.id, 'the service to see the call');

    emu.phoneHolds(alice.id);
    await serviceCaughtUp(h!);
    emu.phoneUnholds(alice.id);
    await serviceCaughtUp(h!);

    // Nothing from the service (what Asterisk itself plays on hold is not its business here).
    expect(mohRequests(h!)).toEqual([]);
    expect(h!.logs.lines.filter((l) => l.msg === 'music on hold started')).toEqual([]);
    expect(membersOf(h!, bridge.id)).toEqual(sorted(alice.id, bob.id));
  });
});
