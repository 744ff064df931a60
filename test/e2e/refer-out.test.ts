// REFER out end to end on the emulator: bob blind-transfers a carrier's call
// to a number off the platform; the call goes back to the carrier (ARI
// redirect), or, when the carrier keeps it, the number is dialled as in any
// blind transfer. The emulator's redirect is modelled on the refer-out traces.
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { TransferService } from '../../src/service.js';
import type { TransferSummary } from '../../src/transfer/observer.js';
import { LEG_MARK, SOURCE_MARK } from '../../src/transfer/recovery.js';
import { AriEmulator } from '../emulator/index.js';
import { captureLogs, type CapturedLogs } from '../helpers/log-capture.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { membersOf, originates, quiescent, startHarness, twoPartyCall, waitUntil, type Harness, transferFinished } from './harness.js';

let h: Harness;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await h?.close();
  for (const c of cleanups.splice(0).reverse()) await c();
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

/**
 * A service that dies in the middle of a REFER out (every connection of it cut
 * for good, through a TCP proxy, as in recovery.test.ts), and a new one.
 */
async function dyingService() {
  const emu = await AriEmulator.start({ app: 'ari-transfer', username: 'asterisk', password: 'pw-secret', channelvars: [SOURCE_MARK, LEG_MARK] });
  const proxy = await TcpProxy.start({ host: '127.0.0.1', port: Number(new URL(emu.url).port) });
  const services: TransferService[] = [];
  cleanups.push(async () => {
    await Promise.all(services.map((s) => s.stop()));
    await proxy.close();
    await emu.close();
  });
  const startService = (url: string, logs: CapturedLogs, finished: TransferSummary[]) => {
    const env = { ARI_URL: url, ARI_USERNAME: 'asterisk', ARI_PASSWORD: 'pw-secret', ARI_RECONNECT_MAX_MS: '200', ROUTING: 'none', ...REFER_OUT };
    const s = new TransferService(loadConfig(env), logs.logger, { observers: [{ finished: (x) => finished.push(x) }], reconnectInitialMs: 20 });
    services.push(s);
    s.start();
    return s;
  };
  const first = startService(proxy.url, captureLogs('debug'), []);
  await waitUntil(() => first.ready, 'the first service to connect');
  const harness: Harness = { emu, service: first, logs: captureLogs('debug'), finished: [], steps: [], close: async () => undefined };
  return {
    harness,
    async killAndRestart() {
      proxy.refuse(true);
      proxy.cut('both');
      await waitUntil(() => !first.ready, 'the first service to lose Asterisk');
      const logs = captureLogs('debug');
      const finished: TransferSummary[] = [];
      const next = startService(emu.url, logs, finished);
      await waitUntil(() => next.ready, 'the new service to connect and resync');
      await waitUntil(() => logs.lines.some((l) => l.msg === 'recovering a transfer interrupted by a restart'), 'the transfer to be recovered');
      return { finished };
    },
  };
}

describe('REFER out across a restart of the service', () => {
  it('killed while the carrier decides: the new service awaits its answer without a second REFER; it takes the call: bob hears 100 then 200', async () => {
    const { harness, killAndRestart } = await dyingService();
    const call = await twoPartyCall(harness, { a: 'carrier-a', b: 'bob' });
    harness.emu.setReferAnswer('carrier-a', { kind: 'accept', finalAfterMs: 500 });
    const refer = harness.emu.sendRefer(call.bob.id, { kind: 'blind', destination: NUMBER });
    await waitUntil(() => harness.emu.refersOut.length === 1, 'the REFER to go out');
    const { finished } = await killAndRestart();
    expect(await refer.waitForTermination(5000)).toEqual([100, 200]);
    await waitUntil(() => finished.length === 1, 'the recovered transfer to finish');
    await quiescent(harness);
    expect(finished[0]).toMatchObject({ result: 'completed', sipfrags: [100, 200] });
    expect(harness.emu.refersOut).toHaveLength(1);
    expect(originates(harness)).toEqual([]);
    expect(harness.emu.channels()).toEqual([]);
    expect(harness.emu.bridges()).toEqual([]);
  });

  it('killed after the carrier refused, before the fallback: the new service puts its call back and dials the number; bob hears 100 then 200', async () => {
    const { harness, killAndRestart } = await dyingService();
    const call = await twoPartyCall(harness, { a: 'carrier-a', b: 'bob' });
    harness.emu.setReferAnswer('carrier-a', { kind: 'refuse', status: 403 });
    harness.emu.setEndpoint(NUMBER, { kind: 'answer', afterMs: 5 });
    const refer = harness.emu.sendRefer(call.bob.id, { kind: 'blind', destination: NUMBER });
    await waitUntil(() => harness.emu.refersOut.length === 1, 'the REFER to go out');
    // The carrier refused at once; the first service waits REFER_OUT_BYE_GRACE_MS (2 s) and dies meanwhile.
    expect(membersOf(harness, call.bridgeId)).toEqual([call.bob.id]);
    const { finished } = await killAndRestart();
    expect(await refer.waitForTermination(6000)).toEqual([100, 200]);
    await waitUntil(() => finished.length === 1, 'the recovered transfer to finish', 6000);
    await quiescent(harness);
    expect(finished[0]).toMatchObject({ result: 'completed', sipfrags: [100, 200] });
    expect(harness.emu.refersOut).toHaveLength(1);
    expect(originates(harness).map((r) => r.query.endpoint)).toEqual([`PJSIP/${NUMBER}`]);
    const leg = harness.emu.channels().find((c) => c.id.startsWith('transfer-'))!;
    expect(membersOf(harness, call.bridgeId)).toEqual([call.alice.id, leg.id].sort());
    expect(harness.emu.channel(call.bob.id)).toBeUndefined();
  });
});
