// Conformance of the emulator with the traces recorded by test/recorder from the real
// Asterisk 22.10.1 (test/fixtures/traces/README.md lists what they show): each scenario is
// replayed (phones by script, REST calls as recorded) and every event and REST answer is
// compared with the recording, values included.

import { afterEach, describe, expect, it } from 'vitest';
import { canonicalRinging, Replay, type SocketSpec } from './conformance/replay.js';
import { recordedEvents } from './conformance/trace.js';

let r: Replay | undefined;
afterEach(async () => {
  await r?.close();
  r = undefined;
});

const MAIN: SocketSpec = { app: 'ari-transfer', subscribeAll: true };

/** The recorder's setup: asterisk-config's dialplan (Stasis(ari-transfer) at priority 1), phones without display names. */
async function start(trace: string, sockets: SocketSpec[] = [MAIN]): Promise<Replay> {
  r = await Replay.start(trace, { app: 'ari-transfer', inboundDialplan: 'asterisk-config' }, sockets);
  return r;
}

function phoneCalls(rp: Replay, endpoint: string, exten: string, app?: string): string {
  return rp.emu.phoneCalls({ endpoint, exten, callerName: '', ...(app ? { app } : {}) }).id;
}

/** Index after the n-th recorded ChannelDestroyed: where a recorded race (DELETE /bridges against a hangup) begins. */
function afterDestroyed(trace: string, n: number): number {
  const rec = canonicalRinging(recordedEvents(trace));
  let seen = 0;
  return rec.findIndex((e) => e.type === 'ChannelDestroyed' && ++seen === n) + 1;
}

describe('conformance with the recorder traces: dial failures', () => {
  it.each([
    ['dial-busy', { kind: 'busy' as const, afterMs: 300 }],
    ['dial-rejected', { kind: 'reject' as const, afterMs: 300 }],
    ['dial-congestion', { kind: 'congestion' as const, afterMs: 300 }],
  ])('%s: Ringing, HangupRequest with the cause, the final Dial status, ChannelDestroyed', async (trace, behaviour) => {
    const rp = await start(trace);
    rp.emu.setEndpoint('1003', behaviour);
    await rp.replayRest();
    await rp.settle();
    rp.compare();
  });

  it.each([
    ['dial-unreachable', '1009'],
    ['dial-unknown', 'nosuch'],
  ])('%s: originate answers 500 Allocation failed, no event', async (trace, endpoint) => {
    const rp = await start(trace);
    rp.emu.setEndpoint(endpoint, { kind: 'unreachable' });
    await rp.replayRest();
    await rp.settle();
    rp.compare();
  });

  it('dial-timeout: after the originate timeout ChannelDestroyed 19, no HangupRequest, no final Dial', async () => {
    const rp = await start('dial-timeout');
    rp.emu.setEndpoint('1003', { kind: 'no-answer' });
    await rp.replayRest();
    await rp.settle();
    rp.compare();
  });
});

describe('conformance with the recorder traces: hold', () => {
  it.each(['hold', 'hold-app-moh'])('%s: ChannelHold with musicclass, Asterisk plays MOH to the peer until ChannelUnhold', async (trace) => {
    const rp = await start(trace);
    const holder = phoneCalls(rp, '1001', '1002');
    await rp.replayTo('POST /bridges/hold-bridge/addChannel');
    await rp.replayTo('POST /bridges/hold-bridge/addChannel');
    await rp.replayTo('GET /bridges/hold-bridge');
    rp.emu.phoneHolds(holder);
    expect(rp.emu.channel('rec-peer')).toMatchObject({ mohPlaying: true, mohClass: 'default', mohBy: 'hold' });
    expect(rp.emu.channel(holder)?.mohPlaying).toBe(false);
    await rp.replayTo('GET /channels/rec-peer');
    rp.emu.phoneUnholds(holder);
    expect(rp.emu.channel('rec-peer')?.mohPlaying).toBe(false);
    await rp.replayTo('GET /bridges/hold-bridge');
    rp.emu.phoneHangsUp(holder);
    await rp.replayRest();
    await rp.settle();
    rp.compare();
  });
});

describe('conformance with the recorder traces: the transferer hangs up', () => {
  it('blind-bye-before-progress: 100 + 503, a second ChannelTransfer without state after StasisEnd; progress then 404', async () => {
    const rp = await start('blind-bye-before-progress');
    phoneCalls(rp, '1001', '1002');
    await rp.replayTo('POST /bridges/call-bridge/addChannel');
    await rp.replayTo('POST /bridges/call-bridge/addChannel');
    const refer = rp.emu.sendRefer('rec-transferer', { kind: 'blind', destination: '1003' });
    rp.emu.phoneHangsUp('rec-transferer');
    await rp.replayRest();
    await rp.settle();
    expect(refer.notifies).toEqual([
      { code: 100, subscriptionState: 'active' },
      { code: 503, subscriptionState: 'terminated' },
    ]);
    rp.compare({ unorderedFrom: { '': afterDestroyed('blind-bye-before-progress', 1) } });
  });

  it('blind-bye-after-progress: 503 only, a second ChannelTransfer saying channel_progress; progress then 404', async () => {
    const rp = await start('blind-bye-after-progress');
    phoneCalls(rp, '1001', '1002');
    await rp.replayTo('POST /bridges/call-bridge/addChannel');
    await rp.replayTo('POST /bridges/call-bridge/addChannel');
    const refer = rp.emu.sendRefer('rec-transferer', { kind: 'blind', destination: '1003' });
    await rp.replayTo('POST /channels/rec-transferer/transfer_progress?states=channel_progress');
    rp.emu.phoneHangsUp('rec-transferer');
    await rp.replayRest();
    await rp.settle();
    expect(refer.sipfrags).toEqual([100, 503]);
    rp.compare({ unorderedFrom: { '': afterDestroyed('blind-bye-after-progress', 1) } });
  });
});

describe('conformance with the recorder traces: several applications', () => {
  it('multi-app: subscribeAll gets other apps’ channel events and ChannelTransfer, not their StasisStart/End', async () => {
    const rp = await start('multi-app', [
      MAIN,
      { label: 'other-app', app: 'other-app', subscribeAll: true },
      { label: 'idle-app', app: 'idle-app', subscribeAll: false },
    ]);
    phoneCalls(rp, '1001', '8001', 'other-app');
    await rp.replayTo('DELETE /channels/');
    await rp.quiet();
    phoneCalls(rp, '1002', '1003');
    await rp.replayTo('DELETE /channels/');
    await rp.quiet();
    await rp.replayTo('DELETE /channels/rec-into-other');
    await rp.quiet();
    phoneCalls(rp, '1004', '8001', 'other-app');
    await rp.replayTo('POST /bridges/other-bridge/addChannel');
    await rp.replayTo('POST /bridges/other-bridge/addChannel');
    const refer = rp.emu.sendRefer('rec-other-referer', { kind: 'blind', destination: '1003' });
    await rp.replayRest();
    await rp.settle();
    expect(refer.sipfrags).toEqual([100, 603]);
    rp.compare();
  });
});

describe('conformance with the recorder traces: bridge technology', () => {
  it('bridge-technology: simple_bridge, native_rtp, softmix, MOH announcer, holding, dtmf_events, proxy_media', async () => {
    const rp = await start('bridge-technology');
    await rp.replayRest();
    await rp.settle();
    rp.compare();
  });
});
