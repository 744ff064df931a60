// The service dies in the middle of a transfer (a crash, an OOM kill, a
// node reboot: no graceful stop) and a new one starts: it finds the transfer
// from the marks in Asterisk's channel variables and finishes it. The dying
// service is played by one whose connections all go through a TCP proxy
// that is then closed for good: from that instant it can neither hear nor
// touch anything, as a killed process; Asterisk sees its WebSocket close.
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { TransferService } from '../../src/service.js';
import type { TransferSummary } from '../../src/transfer/observer.js';
import { LEG_MARK, SOURCE_MARK } from '../../src/transfer/recovery.js';
import { AriEmulator, type EndpointBehaviour } from '../emulator/index.js';
import { captureLogs, type CapturedLogs } from '../helpers/log-capture.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { membersOf, quiescent, replacesFor, setUpAttendedCalls, twoPartyCall, waitUntil, type Harness } from './harness.js';

let emu: AriEmulator | undefined;
const services: TransferService[] = [];
let proxy: TcpProxy | undefined;
afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.stop()));
  await proxy?.close();
  await emu?.close();
  emu = proxy = undefined;
});

const ENV = { ARI_USERNAME: 'asterisk', ARI_PASSWORD: 'pw-secret', ARI_RECONNECT_MAX_MS: '200', ROUTING: 'none' };

function startService(url: string, env: Record<string, string>, finished: TransferSummary[], logs: CapturedLogs): TransferService {
  const s = new TransferService(loadConfig({ ...ENV, ARI_URL: url, ...env }), logs.logger, {
    observers: [{ finished: (x) => finished.push(x) }],
    reconnectInitialMs: 20,
  });
  services.push(s);
  s.start();
  return s;
}

/** The first service (behind the proxy, to be killed) and the harness view of the second, started by `restart()`. */
async function start(env: Record<string, string> = {}) {
  emu = await AriEmulator.start({ app: 'ari-transfer', username: 'asterisk', password: 'pw-secret', channelvars: [SOURCE_MARK, LEG_MARK] });
  proxy = await TcpProxy.start({ host: '127.0.0.1', port: Number(new URL(emu.url).port) });
  const first = { logs: captureLogs('debug'), finished: [] as TransferSummary[] };
  const dying = startService(proxy.url, env, first.finished, first.logs);
  await waitUntil(() => dying.ready, 'the first service to connect');
  const e = emu;
  const h: Harness = { emu: e, service: dying, logs: first.logs, finished: first.finished, steps: [], close: async () => undefined };
  return {
    h,
    /** Kills the first service: every connection of it cut, for good. */
    kill: async () => {
      proxy!.refuse(true);
      proxy!.cut('both');
      await waitUntil(() => !dying.ready, 'the first service to lose Asterisk');
    },
    /** A new service, as after a restart; resolves once it has resynced. */
    restart: async () => {
      const logs = captureLogs('debug');
      const finished: TransferSummary[] = [];
      const s = startService(e.url, env, finished, logs);
      await waitUntil(() => s.ready, 'the new service to connect and resync');
      return { service: s, logs, finished };
    },
  };
}

const legOf = (e: AriEmulator) => e.channels().find((c) => c.id.startsWith('transfer-'));

/** alice and bob talk; bob REFERs alice to carol, who behaves as told; resolves once she rings and alice hears it. */
async function bobTransfersAliceToRingingCarol(h: Harness, carol: EndpointBehaviour) {
  const call = await twoPartyCall(h);
  h.emu.setEndpoint('carol', carol);
  const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });
  await waitUntil(() => legOf(h.emu)?.state === 'Ringing' && h.emu.channel(call.alice.id)?.ringing === true, 'carol to ring, alice to hear it');
  return { call, refer, legId: legOf(h.emu)!.id };
}

type Restarted = Awaited<ReturnType<Awaited<ReturnType<typeof start>>['restart']>>;

/** Kills the first service, starts another, resolves once it has recovered the transfer in flight. */
async function killAndRecover(h: Harness, kill: () => Promise<void>, restart: () => Promise<Restarted>): Promise<Restarted> {
  await kill();
  const next = await restart();
  await waitUntil(() => next.logs.lines.some((l) => l.msg === 'recovering a transfer interrupted by a restart'), 'the transfer to be recovered');
  return next;
}

/** The recovered transfer finished, and Asterisk is quiet. */
async function recoveredFinished(h: Harness, next: Restarted): Promise<void> {
  await waitUntil(() => next.finished.length === 1, 'the recovered transfer to finish');
  await quiescent(h);
}

describe('a transfer survives the death of the service', () => {
  it('blind, killed while the target rings: the new service waits for her; she answers, bob hears 100 then 200, alice talks to carol', async () => {
    const { h, kill, restart } = await start();
    const { call, refer, legId } = await bobTransfersAliceToRingingCarol(h, { kind: 'no-answer' });

    const next = await killAndRecover(h, kill, restart);
    h.emu.phoneAnswers(legId);

    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await recoveredFinished(h, next);
    expect(next.finished[0]).toMatchObject({ result: 'completed', sipfrags: [100, 200] });
    expect(membersOf(h, call.bridgeId)).toEqual([call.alice.id, legId].sort());
    expect(h.emu.channel(call.alice.id)?.ringing).toBe(false);
    expect(h.emu.channel(call.bob.id)).toBeUndefined();
    // Done: no mark left to make a later restart resume it again.
    expect(h.emu.channel(legId)?.variables[LEG_MARK] ?? '').toBe('');
  });

  it('blind with TRANSFER_HOLD_MODE=moh, killed while the target rings: she answers, bob hears 100 then 200, alice talks to carol and her music stops', async () => {
    const { h, kill, restart } = await start({ TRANSFER_HOLD_MODE: 'moh' });
    const call = await twoPartyCall(h);
    h.emu.setEndpoint('carol', { kind: 'no-answer' });
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });
    await waitUntil(() => legOf(h.emu)?.state === 'Ringing' && h.emu.channel(call.alice.id)?.mohPlaying === true, 'carol to ring, alice to hear music');
    const legId = legOf(h.emu)!.id;

    // The music's owner (the first process's registry) dies with it.
    const next = await killAndRecover(h, kill, restart);
    h.emu.phoneAnswers(legId);

    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await recoveredFinished(h, next);
    expect(membersOf(h, call.bridgeId)).toEqual([call.alice.id, legId].sort());
    expect(h.emu.channel(call.alice.id)?.mohPlaying).toBe(false);
  });

  it('blind, killed while the target rings, she is busy: bob hears 603, alice is back with bob without ringback', async () => {
    const { h, kill, restart } = await start();
    // Busy only after a while: the service dies and another starts meanwhile.
    const { call, refer, legId } = await bobTransfersAliceToRingingCarol(h, { kind: 'busy', afterMs: 800 });

    await kill();
    const next = await restart();
    await waitUntil(() => next.logs.lines.some((l) => l.msg === 'recovering a transfer interrupted by a restart'), 'the transfer to be recovered');
    expect(legOf(h.emu)?.state).toBe('Ringing');

    expect(await refer.waitForTermination()).toEqual([100, 603]);
    await waitUntil(() => next.finished.length === 1, 'the recovered transfer to finish');
    await quiescent(h);
    expect(membersOf(h, call.bridgeId)).toEqual([call.alice.id, call.bob.id].sort());
    expect(h.emu.channel(call.alice.id)?.ringing).toBe(false);
    expect(h.emu.channel(legId)).toBeUndefined();
    expect(h.emu.channel(call.bob.id)?.variables[SOURCE_MARK] ?? '').toBe('');
  });

  it('blind, killed while the target rings: TRANSFER_TIMEOUT keeps running across the restart; no answer: 503, the leg hung up', async () => {
    const { h, kill, restart } = await start({ TRANSFER_TIMEOUT: '2' });
    const { call, refer, legId } = await bobTransfersAliceToRingingCarol(h, { kind: 'no-answer' });

    await kill();
    await new Promise((r) => setTimeout(r, 1200)); // the service is down for 1.2 of the 2 seconds
    const next = await restart();
    // What is left of the 2 s, not 2 s again.
    const adopted = next.logs.lines.find((l) => l.msg === 'leg placed before a restart: following it again');
    expect(adopted?.legChannelId).toBe(legId);
    expect(adopted?.timeoutMs).toBeGreaterThan(0);
    expect(adopted?.timeoutMs).toBeLessThanOrEqual(800);
    expect(await refer.waitForTermination(3000)).toEqual([100, 503]);
    await waitUntil(() => next.finished.length === 1, 'the recovered transfer to finish');
    await quiescent(h);
    expect(h.emu.channel(legId)).toBeUndefined();
    expect(h.emu.hangups.find((x) => x.channelId === legId)?.by).toBe('ari');
    expect(membersOf(h, call.bridgeId)).toEqual([call.alice.id, call.bob.id].sort());
    expect(h.emu.channel(call.alice.id)?.ringing).toBe(false);
  });

  it('killed before anything was dialled (the policy webhook still deciding): the new service tells bob 503; alice stays with bob', async () => {
    // A policy webhook that never answers in time keeps the transfer in "checking".
    const { createServer } = await import('node:http');
    const hook = createServer(() => undefined);
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const port = (hook.address() as { port: number }).port;
    try {
      const { h, kill, restart } = await start({ TRANSFER_POLICY_URL: `http://127.0.0.1:${port}/policy`, TRANSFER_POLICY_TIMEOUT_MS: '5000' });
      const call = await twoPartyCall(h);
      const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });
      await waitUntil(() => refer.sipfrags.length === 1 && h.emu.channel(call.bob.id)?.variables[SOURCE_MARK] !== undefined, '100 Trying and the mark');

      await kill();
      const next = await restart();
      expect(await refer.waitForTermination()).toEqual([100, 503]);
      await waitUntil(() => next.finished.length === 1, 'the recovered transfer to finish');
      await quiescent(h);
      expect(next.finished[0]).toMatchObject({ result: 'failed', reason: 'the service restarted before the transfer was carried out' });
      expect(membersOf(h, call.bridgeId)).toEqual([call.alice.id, call.bob.id].sort());
      expect(h.emu.channels().filter((c) => c.id.startsWith('transfer-'))).toEqual([]);
      expect(h.emu.channel(call.bob.id)?.variables[SOURCE_MARK] ?? '').toBe('');
    } finally {
      hook.closeAllConnections();
      await new Promise((r) => hook.close(r));
    }
  });

  it('semi-attended (routed calls), killed while the consultation call still rings: carol answers, bob hears 100 then 200, alice talks to carol', async () => {
    const { h, kill, restart } = await start({ ROUTING: 'dial' });
    const routeLeg = (endpoint: string) => h.emu.channels().find((c) => c.id.startsWith('route-') && c.name.startsWith(`PJSIP/${endpoint}-`));
    h.emu.setEndpoint('bob', { kind: 'answer', afterMs: 5 });
    const alice = h.emu.phoneCalls({ endpoint: 'alice', exten: 'bob' });
    await waitUntil(() => routeLeg('bob')?.bridgeId !== undefined && h.emu.channel(alice.id)?.bridgeId !== undefined, 'alice and bob to be connected');
    const bobLeg = routeLeg('bob')!;
    const bridgeId = bobLeg.bridgeId!;
    h.emu.setEndpoint('carol', { kind: 'no-answer' });
    const consult = h.emu.phoneCalls({ endpoint: 'bob', exten: 'carol' });
    await waitUntil(() => routeLeg('carol')?.state === 'Ringing', 'carol to ring');
    const carolLeg = routeLeg('carol')!;
    const refer = h.emu.sendRefer(bobLeg.id, { kind: 'attended', destination: 'carol', replaces: replacesFor(h, consult.id) });
    await waitUntil(
      () => h.emu.channel(alice.id)?.ringing === true && (h.emu.channel(bobLeg.id)?.variables[SOURCE_MARK] ?? '').includes(carolLeg.id),
      "the transfer to take carol's ringing leg over",
    );

    await kill();
    const next = await restart();
    await waitUntil(() => next.logs.lines.some((l) => l.msg === 'recovering a transfer interrupted by a restart'), 'the transfer to be recovered');
    h.emu.phoneAnswers(carolLeg.id);

    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await waitUntil(() => next.finished.length === 1, 'the recovered transfer to finish');
    await quiescent(h);
    expect(membersOf(h, bridgeId)).toEqual([alice.id, carolLeg.id].sort());
    expect(h.emu.channel(consult.id)).toBeUndefined();
    expect(h.emu.channel(bobLeg.id)).toBeUndefined();
    expect(h.emu.channel(alice.id)?.ringing).toBe(false);
  });

  it('attended, killed after alice was moved but before the 200: the new service finishes it, bob hears 100 then 200, his legs are hung up', async () => {
    const { h, kill, restart } = await start();
    const calls = await setUpAttendedCalls(h);
    // Asterisk carries the move out 300 ms late; the service dies waiting for its answer.
    h.emu.delayNext({ method: 'POST', path: new RegExp(`^/bridges/${calls.consultBridge}/addChannel$`), delayMs: 300 });
    const refer = h.emu.sendRefer(calls.bobFirst.id, { kind: 'attended', destination: '1003', replaces: replacesFor(h, calls.bobConsult.id) });
    await waitUntil(() => (h.emu.channel(calls.bobFirst.id)?.variables[SOURCE_MARK] ?? '').includes('"plan"'), 'the plan to be marked');
    await kill();
    await waitUntil(() => h.emu.channel(calls.alice.id)?.bridgeId === calls.consultBridge, 'the late move to be carried out');

    const next = await restart();
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await waitUntil(() => next.finished.length === 1, 'the recovered transfer to finish');
    await quiescent(h);
    expect(next.finished[0]).toMatchObject({ result: 'completed' });
    expect(membersOf(h, calls.consultBridge)).toEqual([calls.alice.id, calls.carol.id].sort());
    expect(h.emu.channel(calls.bobFirst.id)).toBeUndefined();
    expect(h.emu.channel(calls.bobConsult.id)).toBeUndefined();
    expect(h.emu.bridge(calls.originalBridge)).toBeUndefined();
  });

  it('blind, killed after carol joined alice but before the 200: the new service finishes it, bob hears 100 then 200, alice hears no more ringback', async () => {
    const { h, kill, restart } = await start();
    const { call, refer, legId } = await bobTransfersAliceToRingingCarol(h, { kind: 'no-answer' });
    // Asterisk carries the join out at once but answers 300 ms late; the service dies waiting for the answer.
    h.emu.delayNext({ method: 'POST', path: new RegExp(`^/bridges/${call.bridgeId}/addChannel$`), delayMs: 300, effect: 'on-arrival' });
    h.emu.phoneAnswers(legId);
    await waitUntil(() => h.emu.channel(legId)?.bridgeId === call.bridgeId, 'carol to join alice');
    await kill();
    expect(h.emu.channel(call.alice.id)?.ringing).toBe(true);

    const next = await restart();
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await waitUntil(() => next.finished.length === 1, 'the recovered transfer to finish');
    await quiescent(h);
    expect(membersOf(h, call.bridgeId)).toEqual([call.alice.id, legId].sort());
    expect(h.emu.channel(call.alice.id)?.ringing).toBe(false);
    expect(h.emu.channel(call.bob.id)).toBeUndefined();
  });

  it('a transfer that ended normally leaves no mark: a restart afterwards recovers nothing', async () => {
    const { h, restart } = await start();
    const call = await twoPartyCall(h);
    h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 5 });
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await waitUntil(() => h.finished.length === 1, 'the transfer to finish');
    await quiescent(h);
    const next = await restart();
    await quiescent(h);
    expect(next.logs.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('recovering'))).toEqual([]);
    expect(next.finished).toEqual([]);
  });
});
