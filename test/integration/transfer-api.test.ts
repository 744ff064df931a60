// Transfers started through the HTTP API on the real Asterisk: alice (1001)
// calls bob (1002), who answers; software asks for the transfer with bob's
// channel id (as an agent's desktop would). No REFER: the phones see only
// the calls (and bob a BYE once he has handed over).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import { exitOf } from './phones.js';
import { scenarios, until, type ScenarioContext } from './harness.js';
import { received } from './sipp-messages.js';
import { RtpListener, type Heard } from './rtp-listener.js';

const TOKEN = 'integration-token-0123456789';
const listening = () => new Promise((r) => setTimeout(r, 300));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Music on hold for 2.5 s carries at least this many 20 ms packets of sound (as in hold.test.ts). */
const MUSIC = 50;
const music = (heard: Heard) => (heard.sound >= MUSIC ? 'music' : heard.sound === 0 ? 'silence' : `${heard.sound} packets of sound in ${heard.packets}`);

scenarios('transfers started through the API on a real Asterisk', { TRANSFER_TIMEOUT: '8' }, (ctx) => {
  let api: HttpServer;
  beforeAll(async () => {
    api = await startHttpServer({ service: ctx.service(), config: { host: '127.0.0.1', port: 0, token: TOKEN }, logger: ctx.logs.logger });
  });
  afterAll(async () => {
    await api?.close();
  });

  async function call(method: string, path: string, body?: unknown) {
    const res = await fetch(`${api.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, json: (await res.json()) as any };
  }

  /** alice talks to bob; carol (1003) will answer; returns bob's channel id. With `aliceEar`, alice's RTP goes to it. */
  async function aliceTalksToBob(c: ScenarioContext, aliceEar?: RtpListener) {
    const carol = c.phone({ scenario: 'uas_answer.xml', phone: '1003' });
    const bob = c.phone({ scenario: 'uas_answer.xml', phone: '1002' });
    await listening();
    const alice = aliceEar
      ? c.phone({ scenario: 'uac_call_rtp.xml', phone: '1001', call: '1002', keys: { rtp_port: String(aliceEar.port) } })
      : c.phone({ scenario: 'uac_call_wait_bye.xml', phone: '1001', call: '1002' });
    await until('alice and bob to share a bridge', async () => JSON.stringify(await c.ari.bridgedPhones()) === '[["1001","1002"]]', 10_000, c.explain);
    // The service's registry, too, must have seen the bridge: the API plans from it.
    const [bobChannel] = await c.ari.channelsOf('1002');
    await until('the service to see the call', async () => (await c.service().registry.store.getChannel(bobChannel!.id))?.bridgeId !== undefined, 5000);
    return { alice, bob, carol, bobId: bobChannel!.id };
  }

  it('blind: POST /transfers with bob\'s channel: alice talks to carol, bob gets a BYE, GET says completed', async () => {
    const { alice, bob, carol, bobId } = await aliceTalksToBob(ctx);
    const started = await call('POST', '/transfers', { kind: 'blind', channelId: bobId, destination: '1003' });
    expect(started.status).toBe(202);
    await until('alice and carol to share a bridge', async () => JSON.stringify(await ctx.ari.bridgedPhones()) === '[["1001","1003"]]', 15_000, ctx.explain);
    expect(await exitOf(bob, 10_000)).toBe(0);
    expect(received(bob.messages(), 'BYE')).toHaveLength(1);
    await until('the transfer to finish', async () => (await call('GET', started.json.href)).json.state === 'completed', 5000);
    expect((await call('GET', started.json.href)).json).toMatchObject({ kind: 'blind', result: 'completed', sipfrags: [] });
    await ctx.hangUp('1001');
    expect(await exitOf(alice, 10_000)).toBe(0);
    expect(await exitOf(carol, 10_000)).toBe(0);
    await ctx.expectNothingLeft();
  });

  it('attended, completed: bob talks to carol in a consultation bridge while alice waits alone hearing music, then alice talks to carol without it', async () => {
    const aliceEar = await RtpListener.open();
    try {
      await attendedCompleted(aliceEar);
    } finally {
      await aliceEar.close();
    }
  });

  async function attendedCompleted(aliceEar: RtpListener) {
    const { alice, bob, carol, bobId } = await aliceTalksToBob(ctx, aliceEar);
    const started = await call('POST', '/transfers', { kind: 'attended', channelId: bobId, destination: '1003' });
    expect(started.status).toBe(202);
    await until('bob to talk to carol', async () => (await call('GET', started.json.href)).json.state === 'consulted', 15_000, ctx.explain);
    const consulting = Date.now();
    expect(await ctx.ari.bridgedPhones()).toEqual([['1001'], ['1002', '1003']]);
    await sleep(3000);
    const completing = Date.now();
    expect((await call('POST', `/transfers/${started.json.transferId}/complete`)).status).toBe(200);
    await until('alice and carol to share a bridge', async () => JSON.stringify(await ctx.ari.bridgedPhones()) === '[["1001","1003"]]', 10_000, ctx.explain);
    const joined = Date.now();
    await sleep(2500);
    // Nobody's phone sends audio: what alice gets is what Asterisk plays her.
    expect({ whileBobConsults: music(aliceEar.heard(consulting, completing)), withCarol: music(aliceEar.heard(joined + 500, joined + 2500)) }).toEqual({
      whileBobConsults: 'music',
      withCarol: 'silence',
    });
    expect(await exitOf(bob, 10_000)).toBe(0);
    expect(received(bob.messages(), 'BYE')).toHaveLength(1);
    await until('the transfer to finish', async () => (await call('GET', started.json.href)).json.state === 'completed', 5000);
    await ctx.hangUp('1001');
    expect(await exitOf(alice, 10_000)).toBe(0);
    expect(await exitOf(carol, 10_000)).toBe(0);
    await ctx.expectNothingLeft();
  }

  it('attended, cancelled: carol gets a BYE and bob is back with alice', async () => {
    const { alice, bob, carol, bobId } = await aliceTalksToBob(ctx);
    const started = await call('POST', '/transfers', { kind: 'attended', channelId: bobId, destination: '1003' });
    await until('bob to talk to carol', async () => (await call('GET', started.json.href)).json.state === 'consulted', 15_000, ctx.explain);
    expect((await call('POST', `/transfers/${started.json.transferId}/cancel`)).status).toBe(200);
    expect(await exitOf(carol, 10_000)).toBe(0);
    expect(received(carol.messages(), 'BYE')).toHaveLength(1);
    await until('alice and bob to share a bridge again', async () => JSON.stringify(await ctx.ari.bridgedPhones()) === '[["1001","1002"]]', 10_000, ctx.explain);
    await until('the transfer to finish', async () => (await call('GET', started.json.href)).json.state === 'failed', 5000);
    expect((await call('GET', started.json.href)).json.reason).toBe('cancelled through the API');
    await ctx.hangUp('1001');
    expect(await exitOf(alice, 10_000)).toBe(0);
    expect(await exitOf(bob, 10_000)).toBe(0);
    await ctx.expectNothingLeft();
  });
});
