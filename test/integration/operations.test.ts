// Operating the service on a real Asterisk: the process stopped by SIGTERM
// while a transfer target rings, killed (SIGKILL) in the middle of a
// transfer and started again, the ARI connection lost while it rings, and
// Asterisk restarted under the running service. 1001 (alice) calls 1002
// (bob), who REFERs her to 1003 (carol).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { pingAri, type AsteriskTarget } from './asterisk-target.js';
import { attendedCall } from './attended-call.js';
import { aliceTalksToCarolUntilSheHangsUp, asteriskCli, scenarios, until, type ScenarioContext } from './harness.js';
import { exitOf } from './phones.js';
import { ServiceProcess } from './service-process.js';
import { RtpListener, type Heard } from './rtp-listener.js';
import { received, receivedSipfrags } from './sipp-messages.js';
import { RedisServer } from '../helpers/redis-server.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { inviteResponses, semiAttendedCall } from './semi-attended-call.js';

const listening = () => new Promise((r) => setTimeout(r, 300));

/**
 * alice calls bob, who REFERs her to carol (1003), who plays `carolScenario`.
 * With `aliceEar`, alice's RTP goes to the test.
 */
async function blindTransferToCarol(ctx: ScenarioContext, carolScenario: string, carolKeys?: Record<string, string>, aliceEar?: RtpListener) {
  const carol = ctx.phone({ scenario: carolScenario, phone: '1003', keys: carolKeys });
  const bob = ctx.phone({
    scenario: 'uas_blind_referer.xml',
    phone: '1002',
    keys: { refer_to: '1003', refer_params: '', refer_extra_header: 'X-Scenario: operations' },
  });
  await listening();
  const alice = aliceEar
    ? ctx.phone({ scenario: 'uac_call_rtp.xml', phone: '1001', call: '1002', keys: { rtp_port: String(aliceEar.port) } })
    : ctx.phone({ scenario: 'uac_call_wait_bye.xml', phone: '1001', call: '1002' });
  return { alice, bob, carol };
}

/** The environment production would give the service, talking to ARI at `ariUrl`. */
function serviceEnv(t: AsteriskTarget, ariUrl: string, extra: Record<string, string>): Record<string, string> {
  return { ARI_URL: ariUrl, ARI_USERNAME: t.username, ARI_PASSWORD: t.password, ARI_APP: t.app, ROUTING: 'dial', ...extra };
}

async function exitWithin(service: ServiceProcess, ms: number) {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'still running'>((r) => (timer = setTimeout(() => r('still running'), ms)));
  try {
    return await Promise.race([service.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Carol rings 4 s before she answers: the time the tests take to act while she rings. */
const CAROL_ANSWERS_LATE = { ring_ms: '4000' };

/** What alice hears in a window of RTP: the ringback's tones, or silence (bob's SIPp phone sends no audio). */
const tones = (heard: Heard) => (heard.sound > 0 ? 'ringback' : 'silence');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const count = (messages: string[], msg: string) => messages.filter((m) => m === msg).length;

/** An ARI id as it appears, literally, in a request line. */
const literally = (id: string) => encodeURIComponent(id).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

scenarios(
  'the service as a process on a real Asterisk',
  {},
  (ctx) => {
    const { ari } = ctx;
    let service: ServiceProcess | undefined;
    let proxy: TcpProxy | undefined;
    let ear: RtpListener | undefined;
    let closeEars: (() => Promise<unknown>) | undefined;
    /** The second instance of an active/standby pair, and the Redis they share. */
    let standby: ServiceProcess | undefined;
    let redis: RedisServer | undefined;
    const explain = () => `${ctx.explain()}\n${service?.tail() ?? ''}\n${standby?.tail() ?? ''}`;

    /** Starts the service and waits until GET /readyz says ready. */
    async function startService(ariUrl: string, extra: Record<string, string>): Promise<ServiceProcess> {
      const s = (service = ServiceProcess.start(serviceEnv(ctx.t, ariUrl, extra)));
      await until('the service to be ready', () => s.ready(), 20_000, explain);
      return s;
    }

    /** Carol's channel is ringing and bob has heard 100 Trying: the transfer is in flight. */
    async function carolRings(bob: ReturnType<typeof ctx.phone>) {
      await until(
        'carol to ring, with bob told 100',
        async () => (await ari.channelsOf('1003'))[0]?.state === 'Ringing' && receivedSipfrags(bob.messages()).length === 1,
        15_000,
        explain,
      );
    }

    /**
     * The service has its answers to the transfer's originate and ringback
     * (the routed call made one of each before): cutting the connection now
     * loses events only, no REST answer still on its way.
     */
    async function nothingAsked(s: ServiceProcess) {
      await until(
        'the answers to the originate and the ringback',
        async () => (await s.ariRequests('channels.originate')) >= 2 && (await s.ariRequests('channels.ring')) >= 2,
        10_000,
        explain,
      );
    }

    /**
     * The service talks to ARI through a TCP proxy (to be cut); bob REFERs
     * alice to carol, who rings 4 s; resolves once she rings and the service
     * has its answers (only events are lost when the proxy is cut now).
     */
    async function carolRingingBehindProxy(transferTimeoutSec: string) {
      const link = (proxy = await TcpProxy.start({ host: '127.0.0.1', port: Number(new URL(ctx.t.ariUrl).port) }));
      const s = await startService(link.url, { ARI_RECONNECT_MAX_MS: '500', TRANSFER_TIMEOUT: transferTimeoutSec });
      const phones = await blindTransferToCarol(ctx, 'uas_answer_late.xml', CAROL_ANSWERS_LATE);
      await carolRings(phones.bob);
      await nothingAsked(s);
      return { s, link, ...phones };
    }

    /**
     * SIGKILL, then a new process: resolves once it has recovered the
     * transfer in flight (logging `recovered`: a transfer with nothing left
     * placed for it is "left pending", and ends 503). `whileDown` runs
     * between the two.
     */
    async function killAndStartAgain(
      first: ServiceProcess,
      extra: Record<string, string>,
      whileDown?: () => Promise<void>,
      recovered = 'recovering a transfer interrupted by a restart',
    ): Promise<void> {
      await first.kill();
      await whileDown?.();
      const second = await startService(ctx.t.ariUrl, extra);
      await until('the transfer to be recovered', () => second.messages().includes(recovered), 10_000, explain);
    }

    /**
     * The service behind a proxy that can hold back one of its requests, to
     * kill it in the state that request would end (a few ms on a real
     * Asterisk otherwise). Its REST requests go as plain HTTP
     * (ARI_REST_TRANSPORT=http): on the default transport they travel on the
     * events WebSocket, masked as every frame a client sends is, and no
     * pattern could pick one out of the byte stream.
     */
    async function startBehindHold(extra: Record<string, string> = {}) {
      const link = (proxy = await TcpProxy.start({ host: '127.0.0.1', port: Number(new URL(ctx.t.ariUrl).port) }));
      const s = await startService(link.url, { ARI_REST_TRANSPORT: 'http', ...extra });
      return { s, link };
    }

    /** Holds back the first request matching `pattern`; `caught` once it holds it. */
    function holdBack(link: TcpProxy, pattern: RegExp): { caught: boolean } {
      const held = { caught: false };
      void link.hold(pattern).then(() => (held.caught = true));
      return held;
    }

    /** A transfer's recovery mark on a channel, as Asterisk holds it ('' if none). */
    async function markOf(channelId: string, variable: 'ARI_TRANSFER' | 'ARI_TRANSFER_LEG'): Promise<string> {
      const got = await ari.call<{ value: string } | undefined>('GET', `/channels/${encodeURIComponent(channelId)}/variable?variable=${variable}`);
      return got?.value ?? '';
    }

    /** The bridge a phone's channel is in, and the other channels in it. */
    async function bridgeOf(ext: '1001' | '1003'): Promise<{ id: string; others: string[] }> {
      const [channel] = await ari.channelsOf(ext);
      const bridge = (await ari.bridges()).find((b) => b.channels.includes(channel!.id))!;
      return { id: bridge.id, others: bridge.channels.filter((id) => id !== channel!.id) };
    }

    async function bridgedAs(expected: string[][]) {
      await until(`the bridges to be ${JSON.stringify(expected)}`, async () => JSON.stringify(await ari.bridgedPhones()) === JSON.stringify(expected), 15_000, explain);
    }

    /**
     * alice talks to bob, bob to carol on his second call: resolves with the
     * consultation bridge and bob's first channel, before bob REFERs (2 s
     * after carol answered).
     */
    async function attendedCallsUp() {
      const phones = await attendedCall(ctx, 2000);
      await bridgedAs([['1001', '1002'], ['1002', '1003']]);
      const consultBridge = (await bridgeOf('1003')).id;
      const bobFirst = (await bridgeOf('1001')).others[0]!;
      return { ...phones, consultBridge, bobFirstChannel: bobFirst };
    }

    /**
     * bob's phone REFERs alice to carol, who answers after 1 s: resolves with
     * alice's bridge and channel and bob's channel before bob REFERs. With
     * `aliceEar`, alice's RTP goes to the test.
     */
    async function blindCallUp(aliceEar?: RtpListener) {
      const phones = await blindTransferToCarol(ctx, 'uas_answer_late.xml', { ring_ms: '1000' }, aliceEar);
      await bridgedAs([['1001', '1002']]);
      const { id, others } = await bridgeOf('1001');
      const [aliceChannel] = await ari.channelsOf('1001');
      return { ...phones, aliceBridge: id, aliceChannel: aliceChannel!.id, bobChannel: others[0]! };
    }

    /**
     * bob's first call talks to alice; his second rings carol (3 s), and bob
     * REFERs alice to it on its 180: resolves with alice's bridge and bob's
     * first channel once alice and bob share a bridge, before carol answers.
     */
    async function semiAttendedCallUp() {
      const call = await semiAttendedCall(ctx, { answer: '200', ringMs: 3000 });
      closeEars = call.closeEars;
      await until('alice and bob to share a bridge', async () => (await ari.bridgedPhones()).some((p) => p.join() === '1001,1002'), 15_000, explain);
      const { id, others } = await bridgeOf('1001');
      return { ...call, aliceBridge: id, bobFirstChannel: others[0]! };
    }

    /** A recovered semi-attended transfer's one outcome: 100 then 200, the consultation call 603, bob's calls gone, alice with carol. */
    async function semiAttendedDone({ alice, bobFirst, bobConsult, carol }: Pick<Awaited<ReturnType<typeof semiAttendedCallUp>>, 'alice' | 'bobFirst' | 'bobConsult' | 'carol'>) {
      expect(await exitOf(bobFirst, 30_000)).toBe(0);
      expect(receivedSipfrags(bobFirst.messages())).toEqual([100, 200]);
      expect(await exitOf(bobConsult, 10_000)).toBe(0);
      expect(inviteResponses(bobConsult.messages())).toEqual([100, 180, 603]);
      await until("bob's calls to be gone", async () => (await ari.channelsOf('1002')).length === 0, 10_000, explain);
      await aliceTalksToCarolUntilSheHangsUp(ctx, alice, carol, explain);
    }

    // Registered after the harness's own: runs before it (hooks unwind), so
    // no service of ours is left running, passed or failed.
    afterEach(async () => {
      await service?.kill();
      await standby?.kill();
      await redis?.stop();
      await proxy?.close();
      await ear?.close();
      await closeEars?.();
      closeEars = undefined;
      service = undefined;
      standby = undefined;
      redis = undefined;
      proxy = undefined;
      ear = undefined;
    });

    it('SIGTERM while carol rings: after SHUTDOWN_GRACE_MS carol gets CANCEL, bob hears 100 then 503, alice stops hearing ringback and is back with bob, the process exits 0', async () => {
      // 6 s: one whole cadence of the ringback (2 s of tone, 4 s of silence)
      // fits in it. TRANSFER_TIMEOUT far away: only the shutdown ends this transfer.
      const graceMs = 6000;
      const s = await startService(ctx.t.ariUrl, { SHUTDOWN_GRACE_MS: String(graceMs), TRANSFER_TIMEOUT: '60' });
      const aliceEar = (ear = await RtpListener.open());
      const { alice, bob, carol } = await blindTransferToCarol(ctx, 'uas_ring_forever.xml', undefined, aliceEar);
      await carolRings(bob);

      const signalled = Date.now();
      s.signal('SIGTERM');
      await until('carol to stop ringing', async () => (await ari.channelsOf('1003')).length === 0, 20_000, explain);
      // Transfers in flight get the grace period; only then is the leg given up.
      expect(Date.now() - signalled).toBeGreaterThanOrEqual(graceMs);
      expect(await exitOf(carol, 10_000)).toBe(0);
      expect(received(carol.messages(), 'CANCEL')).toHaveLength(1);
      await until('bob to hear the final NOTIFY', () => receivedSipfrags(bob.messages()).length === 2, 10_000, explain);
      const givenUp = Date.now();
      expect(receivedSipfrags(bob.messages())).toEqual([100, 503]);
      expect(await exitWithin(s, 15_000)).toEqual({ code: 0, signal: null });
      expect(s.messages()).toContain('shutdown grace over: giving up unfinished transfers');
      // The service is gone; the call it gave back is still up.
      expect(await ari.bridgedPhones()).toEqual([['1001', '1002']]);
      await sleep(6500); // a whole cadence again
      expect({ whileCarolRings: tones(aliceEar.heard(signalled, signalled + graceMs)), afterwards: tones(aliceEar.heard(givenUp + 500)) }).toEqual({
        whileCarolRings: 'ringback',
        afterwards: 'silence',
      });

      // Nobody ends a two-party call now: the phones hang up, the bridge is deleted.
      await ctx.hangUp('1001');
      await ctx.hangUp('1002');
      for (const b of await ari.bridges()) await ari.call('DELETE', `/bridges/${encodeURIComponent(b.id)}`);
      expect(await exitOf(alice, 10_000)).toBe(0);
      expect(await exitOf(bob, 10_000)).toBe(0);
      await ctx.expectNothingLeft();
    });

    it('SIGKILL while carol rings, the service started again before she answers: it finds the transfer in Asterisk, bob hears 100 then 200, alice talks to carol', async () => {
      const first = await startService(ctx.t.ariUrl, { TRANSFER_TIMEOUT: '30' });
      // 9 s of ringing: the time to kill the service and start another (Stasis() fails while none runs).
      const { alice, bob, carol } = await blindTransferToCarol(ctx, 'uas_answer_late.xml', { ring_ms: '9000' });
      await carolRings(bob);
      await nothingAsked(first);

      await killAndStartAgain(first, { TRANSFER_TIMEOUT: '30' });
      expect((await ari.channelsOf('1003')).map((c) => c.state)).toEqual(['Ringing']);

      expect(await exitOf(bob, 30_000)).toBe(0);
      expect(receivedSipfrags(bob.messages())).toEqual([100, 200]);
      await aliceTalksToCarolUntilSheHangsUp(ctx, alice, carol, explain);
    });

    it('active/standby on Redis: SIGKILL the active instance while carol rings, the standby takes over and finishes the transfer: bob hears 100 then 200, alice talks to carol', async () => {
      redis = await RedisServer.start();
      const pair = { REGISTRY: 'redis', REDIS_URL: redis.url, HA_MODE: 'active-standby', HA_LEASE_MS: '2000', TRANSFER_TIMEOUT: '30' };
      const active = await startService(ctx.t.ariUrl, { ...pair, INSTANCE_ID: 'a' });
      const waiting = (standby = ServiceProcess.start(serviceEnv(ctx.t, ctx.t.ariUrl, { ...pair, INSTANCE_ID: 'b' })));
      await until('the second instance to wait as the standby', () => waiting.messages().includes('standby: waiting for the lease'), 20_000, explain);
      // 9 s of ringing: the lease (2 s) runs out, the standby connects and recovers before she answers.
      const { alice, bob, carol } = await blindTransferToCarol(ctx, 'uas_answer_late.xml', { ring_ms: '9000' });
      await carolRings(bob);
      await nothingAsked(active);

      await active.kill();
      await until('the standby to recover the transfer', () => waiting.messages().includes('recovering a transfer interrupted by a restart'), 10_000, explain);
      expect(waiting.messages()).toContain('active: took over from a');
      expect((await ari.channelsOf('1003')).map((c) => c.state)).toEqual(['Ringing']);

      expect(await exitOf(bob, 30_000)).toBe(0);
      expect(receivedSipfrags(bob.messages())).toEqual([100, 200]);
      await aliceTalksToCarolUntilSheHangsUp(ctx, alice, carol, explain);
    });

    it('semi-attended, SIGKILL while the consultation call still rings, the service started again: carol answers, bob hears 100 then 200, alice talks to carol', async () => {
      const first = await startService(ctx.t.ariUrl, { TRANSFER_TIMEOUT: '30' });
      // 9 s of ringing: the time to kill the service and start another.
      const { alice, bobFirst, bobConsult, carol, closeEars } = await semiAttendedCall(ctx, { answer: '200', ringMs: 9000 });
      try {
        await until('bob to hear 100 Trying and alice ringback', async () => receivedSipfrags(bobFirst.messages()).length === 1 && (await first.ariRequests('channels.ring')) >= 3, 15_000, explain);
        await killAndStartAgain(first, { TRANSFER_TIMEOUT: '30' });

        expect(await exitOf(bobConsult, 30_000)).toBe(0);
        expect(inviteResponses(bobConsult.messages())).toEqual([100, 180, 603]);
        expect(await exitOf(bobFirst, 10_000)).toBe(0);
        expect(receivedSipfrags(bobFirst.messages())).toEqual([100, 200]);
        await aliceTalksToCarolUntilSheHangsUp(ctx, alice, carol, explain);
      } finally {
        await closeEars();
      }
    });

    it('attended, SIGKILL in "moving" (alice not yet moved into the consultation bridge), the service started again: it moves her, bob hears 100 then 200, alice talks to carol, both of bob calls are gone', async () => {
      const { s: first, link } = await startBehindHold();
      const { alice, bobFirst, bobConsult, carol, consultBridge, bobFirstChannel } = await attendedCallsUp();
      // The request that ends "moving": alice into the consultation bridge.
      const move = holdBack(link, new RegExp(`^POST /ari/bridges/${literally(consultBridge)}/addChannel`, 'm'));
      await until(
        'the move to be held back, the plan marked on bob',
        async () => move.caught && (await markOf(bobFirstChannel, 'ARI_TRANSFER')).includes('"plan"'),
        15_000,
        explain,
      );

      await killAndStartAgain(first, {}, async () => {
        // Killed with the move not carried out: alice still with bob.
        expect(await ari.bridgedPhones()).toEqual([['1001', '1002'], ['1002', '1003']]);
      });

      expect(await exitOf(bobFirst, 30_000)).toBe(0);
      expect(receivedSipfrags(bobFirst.messages())).toEqual([100, 200]);
      expect(await exitOf(bobConsult, 10_000)).toBe(0);
      expect(received(bobConsult.messages(), 'BYE')).toHaveLength(1);
      await until("bob's calls to be gone", async () => (await ari.channelsOf('1002')).length === 0, 10_000, explain);
      await aliceTalksToCarolUntilSheHangsUp(ctx, alice, carol, explain);
    });

    it('attended, SIGKILL in "finishing" (alice moved, the 200 not yet sent), the service started again: bob hears 100 then 200, alice talks to carol, both of bob calls are gone', async () => {
      const { s: first, link } = await startBehindHold();
      const { alice, bobFirst, bobConsult, carol, bobFirstChannel } = await attendedCallsUp();
      // The request that ends "finishing": the 200 sipfrag.
      const final = holdBack(link, new RegExp(`^POST /ari/channels/${literally(bobFirstChannel)}/transfer_progress\\?states=channel_answered`, 'm'));
      await until('the 200 to be held back, the plan marked on bob', async () => final.caught && (await markOf(bobFirstChannel, 'ARI_TRANSFER')).includes('"plan"'), 15_000, explain);

      await killAndStartAgain(first, {}, async () => {
        // Killed after the move: alice with carol (and bob's consultation call), bob's first call alone.
        expect(await ari.bridgedPhones()).toEqual([['1001', '1002', '1003'], ['1002']]);
        expect(receivedSipfrags(bobFirst.messages())).toEqual([100]);
      });

      expect(await exitOf(bobFirst, 30_000)).toBe(0);
      expect(receivedSipfrags(bobFirst.messages())).toEqual([100, 200]);
      expect(await exitOf(bobConsult, 10_000)).toBe(0);
      expect(received(bobConsult.messages(), 'BYE')).toHaveLength(1);
      await until("bob's calls to be gone", async () => (await ari.channelsOf('1002')).length === 0, 10_000, explain);
      await aliceTalksToCarolUntilSheHangsUp(ctx, alice, carol, explain);
    });

    it('blind, SIGKILL in "joining" (carol answered, her leg not yet in alice\'s bridge), the service started again: it joins her, bob hears 100 then 200, alice talks to carol', async () => {
      const { s: first, link } = await startBehindHold({ TRANSFER_TIMEOUT: '30' });
      const { alice, bob, carol, aliceBridge } = await blindCallUp();
      // The request that ends "joining": carol's leg into alice's bridge (nothing else is added to it).
      const join = holdBack(link, new RegExp(`^POST /ari/bridges/${literally(aliceBridge)}/addChannel`, 'm'));
      await until(
        "carol to answer, her leg's join to be held back",
        async () => {
          const [leg] = await ari.channelsOf('1003');
          return join.caught && leg?.state === 'Up' && (await markOf(leg.id, 'ARI_TRANSFER_LEG')) !== '';
        },
        15_000,
        explain,
      );

      await killAndStartAgain(first, { TRANSFER_TIMEOUT: '30' }, async () => {
        // Killed with carol answered and in no bridge: alice still with bob.
        expect(await ari.bridgedPhones()).toEqual([['1001', '1002']]);
        expect((await ari.channelsOf('1003')).map((c) => c.state)).toEqual(['Up']);
      });

      expect(await exitOf(bob, 30_000)).toBe(0);
      expect(receivedSipfrags(bob.messages())).toEqual([100, 200]);
      await until("bob's call to be gone", async () => (await ari.channelsOf('1002')).length === 0, 10_000, explain);
      await aliceTalksToCarolUntilSheHangsUp(ctx, alice, carol, explain);
    });

    it('blind, SIGKILL in "finishing" (carol joined alice, the 200 not yet sent, nor the ringback stop and bob\'s hangup that follow it), the service started again: bob hears 100 then 200 and his call is gone, alice talks to carol and hears no ringback', async () => {
      const { s: first, link } = await startBehindHold({ TRANSFER_TIMEOUT: '30' });
      const aliceEar = (ear = await RtpListener.open());
      const { alice, bob, carol, bobChannel } = await blindCallUp(aliceEar);
      // The request that ends "finishing"; alice's ringback stops only once it is answered.
      const final = holdBack(link, new RegExp(`^POST /ari/channels/${literally(bobChannel)}/transfer_progress\\?states=channel_answered`, 'm'));
      const ringStops = await first.ariRequests('channels.ringStop');
      await until('the 200 to be held back', async () => final.caught, 15_000, explain);
      expect(await first.ariRequests('channels.ringStop')).toBe(ringStops);
      const killed = Date.now();

      await killAndStartAgain(first, { TRANSFER_TIMEOUT: '30' }, async () => {
        expect(await ari.bridgedPhones()).toEqual([['1001', '1002', '1003']]);
      });

      expect(await exitOf(bob, 30_000)).toBe(0);
      expect(receivedSipfrags(bob.messages())).toEqual([100, 200]);
      const recovered = Date.now();
      // Nobody stops the ringback now: Asterisk ends alice's tones itself as
      // carol joins (the bridge changes technology), which this proves too.
      await sleep(6500); // a whole cadence of the ringback (2 s of tone, 4 s of silence)
      expect({ beforeTheKill: tones(aliceEar.heard(killed - 6500, killed)), afterwards: tones(aliceEar.heard(recovered + 500)) }).toEqual({
        beforeTheKill: 'ringback',
        afterwards: 'silence',
      });
      await until("bob's call to be gone", async () => (await ari.channelsOf('1002')).length === 0, 10_000, explain);
      await aliceTalksToCarolUntilSheHangsUp(ctx, alice, carol, explain);
    });

    it('semi-attended, SIGKILL in "joining" (carol answered, her leg not yet in alice\'s bridge), the service started again: it joins her, bob hears 100 then 200, alice talks to carol, bob\'s calls are gone', async () => {
      const { s: first, link } = await startBehindHold({ TRANSFER_TIMEOUT: '30' });
      const { alice, bobFirst, bobConsult, carol, aliceBridge, bobFirstChannel } = await semiAttendedCallUp();
      // The request that ends "joining": carol's leg (bob's consultation call's, taken over) into alice's bridge.
      const join = holdBack(link, new RegExp(`^POST /ari/bridges/${literally(aliceBridge)}/addChannel`, 'm'));
      await until(
        "carol to answer, her leg's join to be held back",
        async () => join.caught && (await ari.channelsOf('1003'))[0]?.state === 'Up' && (await markOf(bobFirstChannel, 'ARI_TRANSFER')).includes('"leg"'),
        15_000,
        explain,
      );

      await killAndStartAgain(first, { TRANSFER_TIMEOUT: '30' }, async () => {
        // Killed with carol answered and in no bridge: alice still with bob.
        expect(await ari.bridgedPhones()).toEqual([['1001', '1002']]);
        expect((await ari.channelsOf('1003')).map((c) => c.state)).toEqual(['Up']);
        expect(receivedSipfrags(bobFirst.messages())).toEqual([100]);
      });

      await semiAttendedDone({ alice, bobFirst, bobConsult, carol });
    });

    it('semi-attended, SIGKILL in "finishing" (carol joined alice, the 200 not yet sent), the service started again: bob hears 100 then 200, alice talks to carol, bob\'s calls are gone', async () => {
      const { s: first, link } = await startBehindHold({ TRANSFER_TIMEOUT: '30' });
      const { alice, bobFirst, bobConsult, carol, bobFirstChannel } = await semiAttendedCallUp();
      // The request that ends "finishing": the 200 sipfrag.
      const final = holdBack(link, new RegExp(`^POST /ari/channels/${literally(bobFirstChannel)}/transfer_progress\\?states=channel_answered`, 'm'));
      await until('the 200 to be held back', async () => final.caught, 15_000, explain);

      await killAndStartAgain(first, { TRANSFER_TIMEOUT: '30' }, async () => {
        // Killed after the join: carol with alice (and bob's first call, not yet hung up).
        expect(await ari.bridgedPhones()).toEqual([['1001', '1002', '1003']]);
        expect(receivedSipfrags(bobFirst.messages())).toEqual([100]);
      });

      await semiAttendedDone({ alice, bobFirst, bobConsult, carol });
    });

    it('blind, SIGKILL in "unwinding" (carol busy, alice\'s ringback not yet stopped, the final NOTIFY not yet sent), the service started again: bob hears 100 then 503, alice is back with bob and hears no ringback, nothing rings', async () => {
      const { s: first, link } = await startBehindHold({ TRANSFER_TIMEOUT: '30' });
      const aliceEar = (ear = await RtpListener.open());
      const { alice, bob, carol } = await blindTransferToCarol(ctx, 'uas_busy.xml', undefined, aliceEar);
      // bob REFERs 1.5 s after his answer: time to arm the hold once the
      // routed call has stopped alice's ringback for its own answer.
      await until(
        "alice and bob to talk, her call's ringback stopped",
        async () => JSON.stringify(await ari.bridgedPhones()) === '[["1001","1002"]]' && (await first.ariRequests('channels.ringStop')) >= 1,
        15_000,
        explain,
      );
      const [aliceChannel] = await ari.channelsOf('1001');
      // The request "unwinding" makes before the final sipfrag: alice's ringback stopped.
      const unwind = holdBack(link, new RegExp(`^DELETE /ari/channels/${literally(aliceChannel!.id)}/ring`, 'm'));
      await until('the ringback stop to be held back', async () => unwind.caught, 15_000, explain);
      expect(await exitOf(carol, 10_000)).toBe(0);
      const killed = Date.now();

      await killAndStartAgain(first, { TRANSFER_TIMEOUT: '30' }, async () => {
        expect(await ari.bridgedPhones()).toEqual([['1001', '1002']]);
        expect(await ari.channelsOf('1003')).toEqual([]);
        expect(receivedSipfrags(bob.messages())).toEqual([100]);
      }, 'recovering a transfer left pending by a restart: 503');

      // carol's leg is gone: the new process finds a REFER with nothing
      // placed for it, stops the ringback and ends it with a terminating 503.
      await until('bob to hear the final NOTIFY', () => receivedSipfrags(bob.messages()).length === 2, 15_000, explain);
      expect(receivedSipfrags(bob.messages())).toEqual([100, 503]);
      const recovered = Date.now();
      expect(await ari.bridgedPhones()).toEqual([['1001', '1002']]);
      expect(await ari.channelsOf('1003')).toEqual([]);
      await sleep(6500); // a whole cadence of the ringback (2 s of tone, 4 s of silence)
      expect({ beforeTheKill: tones(aliceEar.heard(killed - 3000, killed)), afterwards: tones(aliceEar.heard(recovered + 500)) }).toEqual({
        beforeTheKill: 'ringback',
        afterwards: 'silence',
      });

      // The new process took the routed call over: alice hangs up, it ends the call for bob.
      await ctx.hangUp('1001');
      await until('the service to end the call', async () => (await ari.bridges()).length === 0 && (await ari.channelsOf('1002')).length === 0, 10_000, explain);
      expect(await exitOf(alice, 10_000)).toBe(0);
      expect(await exitOf(bob, 10_000)).toBe(0);
      await ctx.expectNothingLeft();
    });

    it('SIGKILL before anything was dialled (the policy webhook still deciding), the service started again: bob hears 100 then 503, alice stays with bob', async () => {
      // A policy webhook that takes its time: the transfer waits in "checking".
      const hook = createServer(() => undefined);
      await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
      try {
        const policy = { TRANSFER_POLICY_URL: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/policy`, TRANSFER_POLICY_TIMEOUT_MS: '20000' };
        const first = await startService(ctx.t.ariUrl, policy);
        // Nobody dials carol in this scenario: no phone for her.
        const bob = ctx.phone({ scenario: 'uas_blind_referer.xml', phone: '1002', keys: { refer_to: '1003', refer_params: '', refer_extra_header: 'X-Scenario: operations' } });
        await listening();
        const alice = ctx.phone({ scenario: 'uac_call_wait_bye.xml', phone: '1001', call: '1002' });
        await until('bob to hear 100 Trying and the transfer to be marked', async () => receivedSipfrags(bob.messages()).length === 1 && (await first.ariRequests('channels.setVariable')) >= 1, 15_000, explain);

        await first.kill();
        await startService(ctx.t.ariUrl, policy);
        await until('bob to hear the final NOTIFY', () => receivedSipfrags(bob.messages()).length === 2, 15_000, explain);
        expect(receivedSipfrags(bob.messages())).toEqual([100, 503]);
        expect(await ari.bridgedPhones()).toEqual([['1001', '1002']]);
        expect(await ari.channelsOf('1003')).toEqual([]);

        // The new process took the routed call over: alice hangs up, it ends the call for bob.
        await ctx.hangUp('1001');
        await until('the service to end the call', async () => (await ari.bridges()).length === 0 && (await ari.channelsOf('1002')).length === 0, 10_000, explain);
        expect(await exitOf(alice, 10_000)).toBe(0);
        expect(await exitOf(bob, 10_000)).toBe(0);
        await ctx.expectNothingLeft();
      } finally {
        hook.closeAllConnections();
        await new Promise((r) => hook.close(r));
      }
    });

    it('ARI connections reset while carol rings, the service back before she answers: bob hears 100 then 200, alice talks to carol', async () => {
      const { s, link, alice, bob, carol } = await carolRingingBehindProxy('20');

      // Both ends see the reset: Asterisk deactivates the application too.
      link.cut('both');
      await until('the service to reconnect and resync', () => count(s.messages(), 'registry resynced from ARI') >= 2, 10_000, explain);
      await until('the service to be ready', () => s.ready(), 10_000, explain);
      // This scenario's order of events (carol answers 4 s after her INVITE,
      // CAROL_ANSWERS_LATE): had she answered while the application was away,
      // Stasis() would have failed and Asterisk would have hung her up.
      expect((await ari.channelsOf('1003')).map((c) => c.state)).toEqual(['Ringing']);
      expect(count(s.messages(), 'ARI events disconnected; events until reconnection are lost')).toBe(1);

      expect(await exitOf(bob, 30_000)).toBe(0);
      expect(receivedSipfrags(bob.messages())).toEqual([100, 200]);
      await until('alice and carol to share a bridge', async () => (await ari.bridgedPhones()).length === 1, 10_000, explain);
      expect(await ari.bridgedPhones()).toEqual([['1001', '1003']]);
      expect(await ari.channelsOf('1002')).toEqual([]);

      await ctx.hangUp('1001');
      expect(await exitOf(alice, 10_000)).toBe(0);
      expect(await exitOf(carol, 10_000)).toBe(0);
      expect(received(carol.messages(), 'BYE')).toHaveLength(1);
      await ctx.expectNothingLeft();
    });

    it('ARI connections reset while carol rings, she answers before the service is back: Asterisk hangs her up itself, bob hears 100 then 503 once the service is back, alice is back with bob', async () => {
      // TRANSFER_TIMEOUT past the test's waits: the 503 must come from the resync, not a timeout.
      const { s, link, alice, bob, carol } = await carolRingingBehindProxy('25');

      // No reconnection until carol has answered: the application is inactive
      // then, so her leg's Stasis() fails and Asterisk hangs it up.
      link.refuse(true);
      link.cut('both');
      await until('the service to see the drop', () => count(s.messages(), 'ARI events disconnected; events until reconnection are lost') === 1, 10_000, explain);
      expect(await exitOf(carol, 15_000)).toBe(0);
      expect(received(carol.messages(), 'BYE')).toHaveLength(1);
      expect(await ari.channelsOf('1003')).toEqual([]);
      link.refuse(false);
      await until('the service to reconnect and resync', () => count(s.messages(), 'registry resynced from ARI') >= 2, 10_000, explain);

      await until('bob to hear the final NOTIFY', () => receivedSipfrags(bob.messages()).length === 2, 10_000, explain);
      expect(receivedSipfrags(bob.messages())).toEqual([100, 503]);
      expect(await ari.bridgedPhones()).toEqual([['1001', '1002']]);

      await ctx.hangUp('1001');
      expect(await exitOf(alice, 10_000)).toBe(0);
      expect(await exitOf(bob, 10_000)).toBe(0);
      await ctx.expectNothingLeft();
    });

    it('ARI connection lost without Asterisk noticing, carol answers before the service is back: the resync finds her answered, bob hears 100 then 200, alice talks to carol', async () => {
      // TRANSFER_TIMEOUT past the test's waits: the transfer must not end by timing out.
      const { s, link, alice, bob, carol } = await carolRingingBehindProxy('25');

      // The service's end is cut; Asterisk's stays open and its events, carol's
      // answer among them, fall into the void. No reconnection until she answered.
      link.refuse(true);
      link.cut('client-side');
      await until('the service to see the drop', () => count(s.messages(), 'ARI events disconnected; events until reconnection are lost') === 1, 10_000, explain);
      await until('carol to answer', async () => (await ari.channelsOf('1003'))[0]?.state === 'Up', 10_000, explain);
      link.refuse(false);
      await until('the service to reconnect and resync', () => count(s.messages(), 'registry resynced from ARI') >= 2, 10_000, explain);

      expect(await exitOf(bob, 15_000)).toBe(0);
      expect(receivedSipfrags(bob.messages())).toEqual([100, 200]);
      await until('alice and carol to share a bridge', async () => (await ari.bridgedPhones()).length === 1, 10_000, explain);
      expect(await ari.bridgedPhones()).toEqual([['1001', '1003']]);
      expect(await ari.channelsOf('1002')).toEqual([]);

      await ctx.hangUp('1001');
      expect(await exitOf(alice, 10_000)).toBe(0);
      expect(await exitOf(carol, 10_000)).toBe(0);
      expect(received(carol.messages(), 'BYE')).toHaveLength(1);
      await ctx.expectNothingLeft();
    });
  },
  { service: false },
);

// Last in this file: it restarts the Asterisk the whole run shares, and
// leaves it up, clean and with the service reconnected.
scenarios('Asterisk restarted under the running service', { TRANSFER_TIMEOUT: '10' }, (ctx) => {
  const { ari } = ctx;

  it('after "core restart now" the service reconnects by itself, and the next blind transfer works: bob hears 100 then 200, alice talks to carol', async () => {
    const service = ctx.service();
    asteriskCli(ctx.t, 'core restart now');
    await until('the service to see Asterisk go', () => ctx.logs.messages().includes('ARI events disconnected; events until reconnection are lost'), 15_000);
    await until('ARI to answer again', async () => (await pingAri(ctx.t)) === undefined, 60_000);
    await until('the service to reconnect and resync', () => service.ready, 30_000);

    const { alice, bob, carol } = await blindTransferToCarol(ctx, 'uas_answer.xml');
    expect(await exitOf(bob, 30_000)).toBe(0);
    expect(receivedSipfrags(bob.messages())).toEqual([100, 200]);
    await until('alice and carol to share a bridge', async () => (await ari.bridgedPhones()).length === 1, 10_000, ctx.explain);
    expect(await ari.bridgedPhones()).toEqual([['1001', '1003']]);
    expect(await ari.channelsOf('1002')).toEqual([]);

    await ctx.hangUp('1001');
    expect(await exitOf(alice, 10_000)).toBe(0);
    expect(await exitOf(carol, 10_000)).toBe(0);
    await ctx.expectNothingLeft();
  });
});
