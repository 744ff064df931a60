// Attended transfers end to end: the service against the ARI emulator.
// Each scenario asserts what the phone heard (sipfrags), who talks to whom
// (bridge membership), and what was hung up.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { membersOf, referAttended, replacesFor, setUpAttendedCalls, startHarness, waitUntil, type Harness, transferFinished } from './harness.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const sorted = (...ids: string[]) => ids.slice().sort();

describe('attended transfer', () => {
  it('(a) resolved by Asterisk: 100 then 200, A and C talk, B and D hung up, the emptied bridge deleted', async () => {
    const calls = await setUpAttendedCalls(h);
    const refer = h.emu.sendRefer(calls.bobFirst.id, { kind: 'attended', destination: '1003', replaces: replacesFor(h, calls.bobConsult.id) });

    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await transferFinished(h);
    expect(membersOf(h, calls.consultBridge)).toEqual(sorted(calls.alice.id, calls.carol.id));
    expect(h.emu.channel(calls.bobFirst.id)).toBeUndefined();
    expect(h.emu.channel(calls.bobConsult.id)).toBeUndefined();
    expect(h.emu.bridge(calls.originalBridge)).toBeUndefined();
    expect(h.emu.hangups.map((x) => x.channelId).sort()).toEqual(sorted(calls.bobFirst.id, calls.bobConsult.id));
    expect(h.finished[0]).toMatchObject({ kind: 'attended', result: 'completed', sipfrags: [100, 200], sourceChannelId: calls.bobFirst.id });
    // The story of the transfer is in the logs, under one transfer id.
    const transferId = h.finished[0]!.transferId;
    const story = h.logs.lines.filter((l) => l.transferId === transferId).map((l) => l.msg);
    expect(story).toEqual(expect.arrayContaining(['transfer requested', 'attended transfer planned', 'transferee moved to the target bridge', 'transfer completed']));
    expect(h.logs.lines.find((l) => l.msg === 'attended transfer planned')).toMatchObject({ resolvedBy: 'asterisk' });
    // Observers (history, metrics, webhooks) see the same steps, in order.
    const seen = h.steps.filter((s) => s.transferId === transferId);
    const names = seen.map((s) => s.step);
    // Planned while the 100 is on its way (not waited for): the 100 and the move are in flight
    // together, the 200 only once the move is done.
    expect(names.slice(0, 2)).toEqual(['requested', 'plan']);
    expect(names.slice(2, 4).sort()).toEqual(['move', 'progress']);
    expect(seen.slice(2, 5).map((s) => s.fields.sipfrag ?? s.fields.to)).toEqual(expect.arrayContaining([100, calls.consultBridge]));
    expect(seen[4]).toMatchObject({ step: 'progress', fields: { sipfrag: 200 } });
    // Asterisk took them in that order: they share the events WebSocket, which it reads in order.
    const taken = h.emu.requests.filter((r) => r.method === 'POST' && /\/(transfer_progress|addChannel)$/.test(r.path));
    expect(taken.map((r) => [r.query.states ?? r.query.channel, r.via])).toEqual([
      ['channel_progress', 'websocket'],
      [calls.alice.id, 'websocket'],
      ['channel_answered', 'websocket'],
    ]);
    // Once Asterisk has echoed the 200: both of bob's legs and the emptied bridge go, in parallel;
    // then connected line: carol is told alice; alice is not told carol's leg's caller id, which
    // is bob's (the test dialled it as an application would, without ARI_TRANSFER_DIALLED).
    expect(names.slice(5, 8).sort()).toEqual(['destroy-bridge', 'hangup', 'hangup']);
    expect(seen.slice(8).map((s) => [s.step, s.message, s.fields.value ?? s.fields.skipped])).toEqual([
      ['connected-line', 'some phones are not told whom they talk to', [`${calls.alice.id}: the other party has the transferer's number`]],
      ['connected-line', 'phone told whom it talks to', '"Alice" <alice>'],
    ]);
  });

  // Was a bug (src/transfer/attended-executor.ts executeAttended): the replaced
  // leg was hung up in parallel with the final transfer_progress. The real
  // Asterisk 22.10 reads that leg's channel, without a reference, while it
  // sends the 200 NOTIFY (res_pjsip_refer ari_notify → the echo event): under
  // load (test/integration/load.test.ts) the hangup freed it meanwhile and
  // Asterisk aborted on a corrupted heap, about one round in ten. The leg now goes
  // once Asterisk has echoed the 200.
  it('(a) the replaced leg is hung up only once Asterisk has echoed the 200, however late Asterisk gets to it', async () => {
    const calls = await setUpAttendedCalls(h);
    // Asterisk sends the 200 NOTIFY, and its echo, only 200 ms after the request, as under load.
    h.emu.delayNext({ method: 'POST', path: /\/transfer_progress$/, query: { states: 'channel_answered' }, delayMs: 200 });
    let echoedAtHangup: boolean | undefined;
    h.emu.beforeNext({
      method: 'DELETE',
      path: new RegExp(`^/channels/${calls.bobConsult.id}$`),
      run: () => (echoedAtHangup = h.emu.events.some((e) => e.type === 'ChannelTransfer' && (e as { state?: string }).state === 'channel_answered')),
    });
    const refer = h.emu.sendRefer(calls.bobFirst.id, { kind: 'attended', destination: '1003', replaces: replacesFor(h, calls.bobConsult.id) });

    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await transferFinished(h);
    expect(echoedAtHangup).toBe(true);
    expect(h.emu.channel(calls.bobConsult.id)).toBeUndefined();
    expect(membersOf(h, calls.consultBridge)).toEqual(sorted(calls.alice.id, calls.carol.id));
  });

  it('(a) also when the REFER arrives on the consultation leg', async () => {
    const calls = await setUpAttendedCalls(h);
    const { sipfrags } = await referAttended(h, calls.bobConsult.id, calls.bobFirst.id);
    expect(sipfrags).toEqual([100, 200]);
    expect(membersOf(h, calls.originalBridge)).toEqual(sorted(calls.alice.id, calls.carol.id));
    expect(h.emu.bridge(calls.consultBridge)).toBeUndefined();
  });

  it('(b) resolved by the service from Call-ID and tags: the same outcome', async () => {
    const calls = await setUpAttendedCalls(h);
    const refer = h.emu.sendRefer(calls.bobFirst.id, {
      kind: 'attended',
      destination: '1003',
      replaces: replacesFor(h, calls.bobConsult.id),
      resolvable: false,
    });
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await transferFinished(h);
    expect(membersOf(h, calls.consultBridge)).toEqual(sorted(calls.alice.id, calls.carol.id));
    expect(h.emu.channel(calls.bobFirst.id)).toBeUndefined();
    expect(h.emu.channel(calls.bobConsult.id)).toBeUndefined();
    expect(h.emu.bridge(calls.originalBridge)).toBeUndefined();
    expect(h.logs.lines.find((l) => l.msg === 'attended transfer planned')).toMatchObject({ resolvedBy: 'registry', replacedChannelId: calls.bobConsult.id });
  });

  it('(c) Replaces naming an unknown Call-ID: 100 then 503, nothing moved', async () => {
    const calls = await setUpAttendedCalls(h);
    const refer = h.emu.sendRefer(calls.bobFirst.id, {
      kind: 'attended',
      destination: '1003',
      replaces: { callId: 'no-such-call@192.0.2.1', fromTag: 'a', toTag: 'b' },
    });
    expect(await refer.waitForTermination()).toEqual([100, 503]);
    await transferFinished(h);
    expect(membersOf(h, calls.originalBridge)).toEqual(sorted(calls.alice.id, calls.bobFirst.id));
    expect(membersOf(h, calls.consultBridge)).toEqual(sorted(calls.bobConsult.id, calls.carol.id));
    expect(h.emu.hangups).toEqual([]);
    expect(h.finished[0]).toMatchObject({ result: 'rejected', sipfrags: [100, 503] });
    expect(h.logs.lines.find((l) => l.msg === 'attended transfer rejected')).toMatchObject({ reason: 'unknown-dialog' });
  });

  it('(c) Replaces with the right Call-ID but foreign tags: 503, nothing moved', async () => {
    const calls = await setUpAttendedCalls(h);
    const { callId } = replacesFor(h, calls.bobConsult.id);
    const refer = h.emu.sendRefer(calls.bobFirst.id, {
      kind: 'attended',
      destination: '1003',
      replaces: { callId, fromTag: 'forged', toTag: 'tags' },
      resolvable: false,
    });
    expect(await refer.waitForTermination()).toEqual([100, 503]);
    expect(membersOf(h, calls.originalBridge)).toEqual(sorted(calls.alice.id, calls.bobFirst.id));
    expect(h.emu.hangups).toEqual([]);
  });

  it('(c) a transfer onto itself: 503, nothing moved', async () => {
    const calls = await setUpAttendedCalls(h);
    const refer = h.emu.sendRefer(calls.bobFirst.id, { kind: 'attended', destination: '200', replaces: replacesFor(h, calls.bobFirst.id) });
    expect(await refer.waitForTermination()).toEqual([100, 503]);
    expect(membersOf(h, calls.originalBridge)).toEqual(sorted(calls.alice.id, calls.bobFirst.id));
    expect(h.emu.hangups).toEqual([]);
  });

  it('(d) progress echoes never start a second transfer', async () => {
    const calls = await setUpAttendedCalls(h);
    const refer = h.emu.sendRefer(calls.bobFirst.id, { kind: 'attended', destination: '1003', replaces: replacesFor(h, calls.bobConsult.id) });
    await refer.waitForTermination();
    await transferFinished(h);
    // Asterisk echoed both progress calls as ChannelTransfer events with a state.
    const echoes = h.emu.events.filter((e) => e.type === 'ChannelTransfer' && 'state' in e);
    expect(echoes.map((e) => (e as { state: string }).state)).toEqual(['channel_progress', 'channel_answered']);
    await waitUntil(() => h.logs.lines.filter((l) => l.msg === 'transfer progress echoed by Asterisk').length === 2, 'both echoes to be seen');
    expect(h.logs.lines.filter((l) => l.msg === 'transfer requested')).toHaveLength(1);
    expect(h.emu.requests.filter((r) => r.path.endsWith('/transfer_progress'))).toHaveLength(2);
  });

  it('(d) the transferer hangs up right after the 202: the transfer goes on, and the second state-less event starts none', async () => {
    const calls = await setUpAttendedCalls(h);
    // The phone hangs up in the same instant it REFERs, before any progress:
    // Asterisk itself sends 100 + 503 and a second ChannelTransfer without state.
    const refer = h.emu.sendRefer(calls.bobFirst.id, { kind: 'attended', destination: '1003', replaces: replacesFor(h, calls.bobConsult.id) });
    h.emu.phoneHangsUp(calls.bobFirst.id);
    expect(await refer.waitForTermination()).toEqual([100, 503]);
    expect(h.emu.events.filter((e) => e.type === 'ChannelTransfer' && !('state' in e))).toHaveLength(2);

    await transferFinished(h);
    await h.service.transfers.idle();
    expect(h.logs.lines.filter((l) => l.msg === 'transfer requested')).toHaveLength(1);
    // What the phone was told is Asterisk's; the call goes where the REFER asked: alice talks to carol.
    expect(h.finished[0]).toMatchObject({ result: 'completed', sipfrags: [] });
    expect(
      h.logs.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('ignored a') && String(l.msg).includes('ChannelTransfer')),
    ).toHaveLength(1);
    expect(membersOf(h, calls.consultBridge)).toEqual(sorted(calls.alice.id, calls.carol.id));
    expect(h.emu.channel(calls.bobConsult.id)).toBeUndefined();
    expect(h.emu.bridge(calls.originalBridge)).toBeUndefined();
  });

  it('(e) an ARI failure midway is undone, then 503', async () => {
    // A three-party original call: two transferees, the second move fails.
    const dave = h.emu.phoneCalls({ endpoint: 'dave', exten: '100', callerName: 'Dave' });
    h.emu.answer(dave.id);
    const calls = await setUpAttendedCalls(h, [dave]);
    h.emu.failNext({ method: 'POST', path: /\/bridges\/[^/]+\/addChannel$/, query: { channel: dave.id }, status: 500, message: 'Internal Server Error' });

    const refer = h.emu.sendRefer(calls.bobFirst.id, { kind: 'attended', destination: '1003', replaces: replacesFor(h, calls.bobConsult.id) });
    expect(await refer.waitForTermination()).toEqual([100, 503]);
    await transferFinished(h);
    // alice was moved, then moved back: everyone is where they were.
    expect(membersOf(h, calls.originalBridge)).toEqual(sorted(calls.alice.id, calls.bobFirst.id, dave.id));
    expect(membersOf(h, calls.consultBridge)).toEqual(sorted(calls.bobConsult.id, calls.carol.id));
    expect(h.emu.hangups).toEqual([]);
    expect(h.finished[0]).toMatchObject({ result: 'failed', sipfrags: [100, 503] });
    expect(h.finished[0]!.reason).toMatch(/^move .* failed \(bridges.addChannel failed: 500 Internal Server Error\); undone$/);
    const addChannels = h.emu.requests.filter((r) => r.path.endsWith('/addChannel') && r.method === 'POST').slice(-3);
    expect(addChannels.map((r) => [r.path, r.query.channel, r.status])).toEqual([
      [`/bridges/${calls.consultBridge}/addChannel`, calls.alice.id, 204],
      [`/bridges/${calls.consultBridge}/addChannel`, dave.id, 500],
      [`/bridges/${calls.originalBridge}/addChannel`, calls.alice.id, 204],
    ]);
  });

  it('stops music on hold the service started on the transferee', async () => {
    const calls = await setUpAttendedCalls(h);
    await h.service.rest.startMoh(calls.alice.id);
    await h.service.registry.store.patchChannel(calls.alice.id, { mohByService: true });
    expect(h.emu.channel(calls.alice.id)?.mohPlaying).toBe(true);

    const { sipfrags } = await referAttended(h, calls.bobFirst.id, calls.bobConsult.id);
    expect(sipfrags).toEqual([100, 200]);
    expect(h.emu.channel(calls.alice.id)?.mohPlaying).toBe(false);
  });

  // While the events socket is down, Asterisk has no active application of
  // ours: new calls cannot enter it, but what happens to calls already in it
  // (hangups, bridge changes made by another client) is lost to us.
  it('(f) after the WebSocket drops and comes back, the registry is resynced and a transfer still works', async () => {
    const eve = h.emu.phoneCalls({ endpoint: 'eve', exten: '100' });
    const calls = await setUpAttendedCalls(h);
    h.emu.refuseWebSockets(true);
    h.emu.dropWebSockets();
    await waitUntil(() => !h.service.ready, 'the service to notice the drop');
    h.emu.phoneHangsUp(eve.id);
    expect(await h.service.registry.store.getChannel(eve.id)).toBeDefined();
    h.emu.refuseWebSockets(false);
    await waitUntil(() => h.service.ready, 'the service to reconnect and resync');
    expect(await h.service.registry.store.getChannel(eve.id)).toBeUndefined();
    expect(h.logs.lines.filter((l) => l.msg === 'registry resynced from ARI')).toHaveLength(2);

    const { sipfrags } = await referAttended(h, calls.bobFirst.id, calls.bobConsult.id);
    expect(sipfrags).toEqual([100, 200]);
    expect(membersOf(h, calls.consultBridge)).toEqual(sorted(calls.alice.id, calls.carol.id));
    expect(h.emu.bridge(calls.originalBridge)).toBeUndefined();
  });

  it('(f) bridges changed while disconnected are known after the resync', async () => {
    const alice = h.emu.phoneCalls({ endpoint: 'alice', exten: '100' });
    const bobFirst = h.emu.phoneCalls({ endpoint: 'bob', exten: '200' });
    const bobConsult = h.emu.phoneCalls({ endpoint: 'bob', exten: '1003' });
    const carol = h.emu.phoneCalls({ endpoint: 'carol', exten: '300' });
    for (const c of [alice, bobFirst, bobConsult, carol]) h.emu.answer(c.id);
    await waitUntil(async () => (await h.service.registry.store.counts()).channels === 4, 'the service to see the four calls');
    h.emu.refuseWebSockets(true);
    h.emu.dropWebSockets();
    await waitUntil(() => !h.service.ready, 'the service to notice the drop');
    const b1 = h.emu.createBridge({ name: 'original-call' });
    const b2 = h.emu.createBridge({ name: 'consult-call' });
    h.emu.addToBridge(b1.id, alice.id);
    h.emu.addToBridge(b1.id, bobFirst.id);
    h.emu.addToBridge(b2.id, bobConsult.id);
    h.emu.addToBridge(b2.id, carol.id);
    expect(await h.service.registry.store.getBridge(b1.id)).toBeUndefined();
    h.emu.refuseWebSockets(false);
    await waitUntil(() => h.service.ready, 'the service to reconnect and resync');

    const { sipfrags } = await referAttended(h, bobFirst.id, bobConsult.id, { resolvable: false });
    expect(sipfrags).toEqual([100, 200]);
    expect(membersOf(h, b2.id)).toEqual(sorted(alice.id, carol.id));
    expect(h.emu.bridge(b1.id)).toBeUndefined();
  });

  it('says loudly, and stops claiming readiness, when another client takes the application over', async () => {
    const other = new WebSocket(`${h.emu.url.replace('http', 'ws')}/ari/events?app=ari-transfer`, {
      headers: { Authorization: `Basic ${Buffer.from('asterisk:pw-secret').toString('base64')}` },
    });
    await new Promise((resolve, reject) => other.once('open', resolve).once('error', reject));
    try {
      await waitUntil(() => !h.service.ready, 'the service to give up readiness');
      expect(h.logs.lines.find((l) => l.level === 50 && String(l.msg).startsWith('another ARI client connected with the same application name'))).toBeDefined();
    } finally {
      other.close();
    }
  });
});

