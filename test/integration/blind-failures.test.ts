// Blind transfers that do not go through, or that go through differently,
// played by SIPp phones on the real Asterisk: 1001 (alice) calls 1002 (bob),
// who answers and REFERs her to a number. When the transfer fails or is
// refused, bob hears 100 then one final sipfrag and alice is left as she
// was, with bob. One suite (one service) per configuration.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { exitOf, type SippPhone } from './phones.js';
import { scenarios, until, type ScenarioContext } from './harness.js';
import { received, receivedSipfrags } from './sipp-messages.js';

const listening = () => new Promise((r) => setTimeout(r, 300));

interface BlindCall {
  alice: SippPhone;
  bob: SippPhone;
}

/** bob waits for a call and REFERs it to `referTo`; alice (playing `alice`, by default a phone that waits) calls him. */
async function blindCall(ctx: ScenarioContext, referTo: string, alice: { scenario: string; keys?: Record<string, string> } = { scenario: 'uac_call_wait_bye.xml' }): Promise<BlindCall> {
  const bob = ctx.phone({
    scenario: 'uas_blind_referer.xml',
    phone: '1002',
    keys: { refer_to: referTo, refer_params: '', refer_extra_header: 'X-Scenario: blind' },
  });
  await listening();
  return { bob, alice: ctx.phone({ ...alice, phone: '1001', call: '1002' }) };
}

/** The phone played its scenario to the end (sipp exit 0); if not, its own account is the message. */
async function endsWell(phone: SippPhone, ms: number): Promise<void> {
  const code = await exitOf(phone, ms);
  expect(code, phone.diagnostics()).toBe(0);
}

async function finalSipfrag(ctx: ScenarioContext, bob: SippPhone): Promise<number[]> {
  await until('bob to hear the final NOTIFY', () => receivedSipfrags(bob.messages()).length >= 2, 20_000, ctx.explain);
  return receivedSipfrags(bob.messages());
}

/** After a failed transfer: alice and bob still talk, alone in their bridge; then alice hangs up and everything ends. */
async function expectAliceBackWithBob(ctx: ScenarioContext, { alice, bob }: BlindCall): Promise<void> {
  expect(await ctx.ari.bridgedPhones()).toEqual([['1001', '1002']]);
  await ctx.hangUp('1001');
  await endsWell(alice, 10_000);
  await endsWell(bob, 10_000);
  expect(received(bob.messages(), 'BYE')).toHaveLength(1);
  await ctx.expectNothingLeft();
}

/**
 * Stands where a phone of the test profile listens, answering nothing:
 * records the requests Asterisk sends there (a phone that must not ring).
 */
async function silentPhone(port: number): Promise<{ requests: string[]; close(): void }> {
  const socket: Socket = createSocket('udp4');
  const requests: string[] = [];
  socket.on('message', (msg) => {
    const startLine = msg.toString().split('\r\n', 1)[0] ?? '';
    if (!startLine.startsWith('SIP/2.0')) requests.push(startLine);
  });
  await new Promise<void>((resolve, reject) => socket.once('error', reject).bind(port, '127.0.0.1', resolve));
  return { requests, close: () => socket.close() };
}

// --- the policy webhook: a small HTTP server whose verdict each test sets --

interface PolicyRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}
const policyRequests: PolicyRequest[] = [];
let policyVerdict: Record<string, unknown> = { allow: false, reason: 'not set by the test' };
let policyServer: Server | undefined;
/** Read by the harness when the webhook suite's service starts, after the server below is listening. */
const webhookEnv: Record<string, string> = {};

beforeAll(async () => {
  policyServer = createServer((req, res) => {
    let raw = '';
    req.on('data', (d: Buffer) => (raw += d.toString()));
    req.on('end', () => {
      let body: unknown = raw;
      try {
        body = JSON.parse(raw);
      } catch {
        // kept as text
      }
      policyRequests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(policyVerdict));
    });
  });
  await new Promise<void>((resolve) => policyServer!.listen(0, '127.0.0.1', resolve));
  webhookEnv.TRANSFER_POLICY_URL = `http://127.0.0.1:${(policyServer.address() as AddressInfo).port}/transfer-policy`;
});

afterAll(async () => {
  await new Promise((r) => policyServer?.close(r));
});

// ---------------------------------------------------------------------------

scenarios('blind transfers that fail, on a real Asterisk', { TRANSFER_TIMEOUT: '20' }, (ctx) => {
  const { ari } = ctx;

  it('the target declines (603): bob hears 100 then 603, alice is back with bob', async () => {
    const carol = ctx.phone({ scenario: 'uas_decline.xml', phone: '1003' });
    const call = await blindCall(ctx, '1003');
    await endsWell(carol, 30_000);
    expect(await finalSipfrag(ctx, call.bob)).toEqual([100, 603]);
    expect(await ari.channelsOf('1003')).toEqual([]);
    await expectAliceBackWithBob(ctx, call);
  });

  it('the target has no contact (1005): bob hears 100 then 503, alice is back with bob', async () => {
    const call = await blindCall(ctx, '1005');
    expect(await finalSipfrag(ctx, call.bob)).toEqual([100, 503]);
    await expectAliceBackWithBob(ctx, call);
  });

  it('the number names no endpoint (1099): bob hears 100 then 503, alice is back with bob', async () => {
    const call = await blindCall(ctx, '1099');
    expect(await finalSipfrag(ctx, call.bob)).toEqual([100, 503]);
    await expectAliceBackWithBob(ctx, call);
  });

  it('bob transfers alice to himself (1002): 100 then 603, his phone gets no second call, alice stays with him', async () => {
    const call = await blindCall(ctx, '1002');
    expect(await finalSipfrag(ctx, call.bob)).toEqual([100, 603]);
    expect(received(call.bob.messages(), 'INVITE')).toHaveLength(1);
    await expectAliceBackWithBob(ctx, call);
  });

  it('bob transfers alice to herself (1001): 100 then 603, her phone gets no new call, she stays with bob', async () => {
    const call = await blindCall(ctx, '1001');
    expect(await finalSipfrag(ctx, call.bob)).toEqual([100, 603]);
    expect(received(call.alice.messages(), 'INVITE')).toEqual([]);
    await expectAliceBackWithBob(ctx, call);
  });

  it('alice hangs up while carol rings: carol gets CANCEL, bob hears 100 then 503, nothing is left', async () => {
    const carol = ctx.phone({ scenario: 'uas_ring_forever.xml', phone: '1003' });
    // bob REFERs 1.5 s after answering; alice hangs up 4 s after her call
    // was answered, while carol rings (TRANSFER_TIMEOUT is 20 s).
    const { alice, bob } = await blindCall(ctx, '1003', { scenario: 'uac_call_bye_after.xml', keys: { bye_after_ms: '4000' } });
    await endsWell(alice, 30_000);
    await endsWell(carol, 10_000);
    expect(received(carol.messages(), 'CANCEL')).toHaveLength(1);
    expect(await finalSipfrag(ctx, bob)).toEqual([100, 503]);
    // Nobody is left for bob to talk to: the call ends for him too.
    await endsWell(bob, 10_000);
    expect(received(bob.messages(), 'BYE')).toHaveLength(1);
    await ctx.expectNothingLeft();
  });
});

scenarios('blind transfers refused by TRANSFER_DENY / TRANSFER_ALLOW, on a real Asterisk', { TRANSFER_DENY: '1003', TRANSFER_ALLOW: '100[1-3]' }, (ctx) => {
  let phoneThatMustNotRing: Awaited<ReturnType<typeof silentPhone>> | undefined;
  afterEach(() => {
    phoneThatMustNotRing?.close();
    phoneThatMustNotRing = undefined;
  });

  it('a destination on the deny list (1003, though also allowed): 100 then 603, carol is never called, alice stays with bob', async () => {
    phoneThatMustNotRing = await silentPhone(ctx.t.phones['1003']);
    const call = await blindCall(ctx, '1003');
    expect(await finalSipfrag(ctx, call.bob)).toEqual([100, 603]);
    expect(phoneThatMustNotRing.requests).toEqual([]);
    await expectAliceBackWithBob(ctx, call);
  });

  it('a destination the allow list does not match (1004): 100 then 603, 1004 is never called, alice stays with bob', async () => {
    phoneThatMustNotRing = await silentPhone(ctx.t.phones['1004']);
    const call = await blindCall(ctx, '1004');
    expect(await finalSipfrag(ctx, call.bob)).toEqual([100, 603]);
    expect(phoneThatMustNotRing.requests).toEqual([]);
    await expectAliceBackWithBob(ctx, call);
  });
});

scenarios('blind transfers decided by the policy webhook, on a real Asterisk', webhookEnv, (ctx) => {
  const { ari } = ctx;
  let phoneThatMustNotRing: Awaited<ReturnType<typeof silentPhone>> | undefined;
  afterEach(() => {
    phoneThatMustNotRing?.close();
    phoneThatMustNotRing = undefined;
    policyRequests.length = 0;
  });

  it('the webhook denies: 100 then 603, carol is never called, alice stays with bob', async () => {
    policyVerdict = { allow: false, reason: 'carol is off duty' };
    phoneThatMustNotRing = await silentPhone(ctx.t.phones['1003']);
    const call = await blindCall(ctx, '1003');
    expect(await finalSipfrag(ctx, call.bob)).toEqual([100, 603]);
    expect(phoneThatMustNotRing.requests).toEqual([]);
    expect(policyRequests.map((r) => (r.body as { destination?: unknown }).destination)).toEqual(['1003']);
    await expectAliceBackWithBob(ctx, call);
  });

  it('the webhook allows: 100 then 200, alice talks to carol; it was told who transfers whom where', async () => {
    policyVerdict = { allow: true };
    const carol = ctx.phone({ scenario: 'uas_answer.xml', phone: '1003' });
    const { alice, bob } = await blindCall(ctx, '1003');
    await endsWell(bob, 30_000);
    expect(receivedSipfrags(bob.messages())).toEqual([100, 200]);
    await until('alice and carol to share a bridge', async () => (await ari.bridgedPhones()).length === 1, 10_000, ctx.explain);
    expect(await ari.bridgedPhones()).toEqual([['1001', '1003']]);

    const bobCallId = received(bob.messages(), 'INVITE')[0]?.callId;
    const aliceCallId = alice.messages().find((m) => m.method === 'INVITE')?.callId;
    expect(policyRequests).toHaveLength(1);
    const [request] = policyRequests;
    expect({ method: request!.method, url: request!.url, contentType: request!.headers['content-type'] }).toEqual({
      method: 'POST',
      url: '/transfer-policy',
      contentType: 'application/json',
    });
    expect(request!.body).toEqual({
      type: 'transfer.policy',
      kind: 'blind',
      destination: '1003',
      transferer: {
        channelId: expect.any(String),
        name: expect.stringMatching(/^PJSIP\/1002-[0-9a-f]+$/),
        endpoint: '1002',
        callId: bobCallId,
        // bob's leg was placed by Asterisk: its caller id is the one shown
        // to bob (alice's), not bob's own number.
        callerId: { name: '', number: '1001' },
      },
      transferees: [
        {
          channelId: expect.any(String),
          name: expect.stringMatching(/^PJSIP\/1001-[0-9a-f]+$/),
          endpoint: '1001',
          callId: aliceCallId,
          callerId: { name: '', number: '1001' },
        },
      ],
      bridgeId: expect.any(String),
    });

    await ctx.hangUp('1001');
    await endsWell(alice, 10_000);
    await endsWell(carol, 10_000);
    await ctx.expectNothingLeft();
  });
});

scenarios('blind transfers from a phone that wants 200 at once, on a real Asterisk', { TRANSFER_IMMEDIATE_200_ENDPOINTS: '1002' }, (ctx) => {
  const { ari } = ctx;

  it('bob hears 100 then 200 while carol still rings, hangs up, and alice still ends up talking to carol', async () => {
    const carol = ctx.phone({ scenario: 'uas_answer_late.xml', phone: '1003', keys: { ring_ms: '3000' } });
    const { alice, bob } = await blindCall(ctx, '1003');
    await until('bob to hear the final NOTIFY', () => receivedSipfrags(bob.messages()).length >= 2, 20_000, ctx.explain);
    const carolAnswered = () => carol.messages().some((m) => m.direction === 'sent' && m.status === 200 && m.cseqMethod === 'INVITE');
    expect({ sipfrags: receivedSipfrags(bob.messages()), carolAnswered: carolAnswered() }).toEqual({ sipfrags: [100, 200], carolAnswered: false });
    // bob hangs up after his 200, as a phone does; carol answers later.
    await endsWell(bob, 10_000);
    await until('carol to answer', carolAnswered, 10_000, ctx.explain);
    await until('alice and carol to share a bridge', async () => (await ari.bridgedPhones()).length === 1, 10_000, ctx.explain);
    expect(await ari.bridgedPhones()).toEqual([['1001', '1003']]);
    expect(await ari.channelsOf('1002')).toEqual([]);

    await ctx.hangUp('1001');
    await endsWell(alice, 10_000);
    await endsWell(carol, 10_000);
    await ctx.expectNothingLeft();
  });
});
