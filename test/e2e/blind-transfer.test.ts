// Blind transfers end to end, as in the blind-* traces: alice talks to bob,
// bob's phone REFERs to another extension. Asserts what the phone heard,
// who talks to whom, what the transferee heard meanwhile, what was hung up.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Channel } from '../../src/ari/models.js';
import { membersOf, originates, startHarness, twoPartyCall, waitUntil, type Harness, transferFinished } from './harness.js';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

interface BlindCall {
  alice: Channel;
  bob: Channel;
  bridgeId: string;
}

/** alice and bob talking in one bridge, as the blind-answered trace's harness set them up. */
async function aliceTalksToBob(env: Record<string, string> = {}): Promise<BlindCall> {
  h = await startHarness(env);
  return twoPartyCall(h);
}

/** The leg the service placed for the transfer, once it exists. */
function transferLeg() {
  return h.emu.channels().find((c) => c.id.startsWith('transfer-'));
}

async function finished() {
  return transferFinished(h);
}

const sorted = (...ids: string[]) => ids.slice().sort();

describe('blind transfer', () => {
  it('both parties REFER at once: the first transfer goes on, the second hears 503 and nothing of its own is dialled', async () => {
    const call = await aliceTalksToBob();
    h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 100 });
    const first = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });
    const second = h.emu.sendRefer(call.alice.id, { kind: 'blind', destination: 'dave' });
    expect(await second.waitForTermination()).toEqual([100, 503]);
    expect(await first.waitForTermination()).toEqual([100, 200]);
    await transferFinished(h, 2);
    expect(h.finished.find((s) => s.sourceChannelId === call.alice.id)).toMatchObject({ result: 'rejected', reason: `another transfer is rearranging bridge ${call.bridgeId}` });
    expect(originates(h).map((r) => r.query.endpoint)).toEqual(['PJSIP/carol']);
    const carol = transferLeg()!;
    expect(membersOf(h, call.bridgeId)).toEqual(sorted(call.alice.id, carol.id));
  });

  it('answered: 100 then 200, the transferee talks to the new leg, the transferer is hung up, nothing left over', async () => {
    const call = await aliceTalksToBob();
    h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 50 });
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });

    await waitUntil(() => transferLeg()?.state === 'Ringing' && h.emu.channel(call.alice.id)?.ringing === true, 'carol to ring and alice to hear it');
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    const summary = await finished();

    const carol = h.emu.channels().find((c) => c.name.startsWith('PJSIP/carol'))!;
    expect(membersOf(h, call.bridgeId)).toEqual(sorted(call.alice.id, carol.id));
    expect(h.emu.channel(call.alice.id)?.ringing).toBe(false);
    expect(h.emu.channel(call.alice.id)?.mohPlaying).toBe(false);
    expect(h.emu.hangups.map((x) => [x.channelId, x.by])).toEqual([[call.bob.id, 'ari']]);
    expect(h.emu.channels().map((c) => c.id).sort()).toEqual(sorted(call.alice.id, carol.id));
    expect(h.emu.bridges().map((b) => b.id)).toEqual([call.bridgeId]);
    expect(summary).toMatchObject({ kind: 'blind', destination: 'carol', result: 'completed', sipfrags: [100, 200] });
    // carol's phone is called with the transferee's caller id, not "Anonymous"
    // (once the transfer is complete the leg's caller id is carol's own: connected line).
    expect(originates(h).map((r) => r.query.callerId)).toEqual(['"Alice" <alice>']);
    expect(carol.caller).toEqual({ name: '', number: 'carol' });
  });

  it('sends the configured caller id and channel variables with the new leg', async () => {
    const call = await aliceTalksToBob({
      TRANSFER_CALLER_ID: 'transferer',
      TRANSFER_CHANNEL_VARS: '{"PJSIP_HEADER(add,X-Transferred-By)":"bob"}',
      TRANSFER_DIAL_TEMPLATE: 'PJSIP/{exten}',
    });
    h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 20 });
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    const carol = h.emu.channels().find((c) => c.name.startsWith('PJSIP/carol'))!;
    expect(carol.caller).toEqual({ name: 'Bob', number: 'bob' });
    expect(carol.variables['PJSIP_HEADER(add,X-Transferred-By)']).toBe('bob');
  });

  it.each([
    ['busy', { kind: 'busy' as const }, 603],
    ['rejected', { kind: 'reject' as const }, 603],
    ['unreachable', { kind: 'unreachable' as const }, 503],
    ['congested', { kind: 'congestion' as const }, 503],
  ])('target %s: the phone hears %s, alice is back with bob exactly as before', async (_name, behaviour, code) => {
    const call = await aliceTalksToBob();
    h.emu.setEndpoint('carol', behaviour);
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });
    expect(await refer.waitForTermination()).toEqual([100, code]);
    const summary = await finished();
    expect(summary.result).toBe('failed');
    expect(membersOf(h, call.bridgeId)).toEqual(sorted(call.alice.id, call.bob.id));
    expect(h.emu.channel(call.alice.id)?.ringing).toBe(false);
    expect(transferLeg()).toBeUndefined();
    expect(h.emu.channels().map((c) => c.id).sort()).toEqual(sorted(call.alice.id, call.bob.id));
  });

  it('no answer within TRANSFER_TIMEOUT: 503, the ringing leg is hung up, alice back with bob', async () => {
    const call = await aliceTalksToBob({ TRANSFER_TIMEOUT: '0.3' });
    h.emu.setEndpoint('carol', { kind: 'no-answer' });
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });
    expect(await refer.waitForTermination()).toEqual([100, 503]);
    const summary = await finished();
    expect(summary.reason).toMatch(/^target no-answer/);
    expect(membersOf(h, call.bridgeId)).toEqual(sorted(call.alice.id, call.bob.id));
    expect(h.emu.hangups.filter((x) => x.channelId.startsWith('transfer-'))).toHaveLength(1);
    expect(transferLeg()).toBeUndefined();
    expect(h.emu.channel(call.alice.id)?.ringing).toBe(false);
  });

  it('the transferer hanging up early does not stop the transfer', async () => {
    const call = await aliceTalksToBob();
    h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 150 });
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });
    await waitUntil(() => refer.sipfrags.length === 1 && transferLeg() !== undefined, '100 Trying and the new leg');
    h.emu.phoneHangsUp(call.bob.id);
    await waitUntil(() => transferLeg()?.bridgeId === call.bridgeId, 'carol to join alice');
    await finished();
    expect(membersOf(h, call.bridgeId)).toEqual(sorted(call.alice.id, transferLeg()!.id));
    expect(h.emu.channel(call.alice.id)?.ringing).toBe(false);
    expect(h.emu.hangups.map((x) => [x.channelId, x.by])).toEqual([[call.bob.id, 'phone']]);
  });

  it('the transferer hanging up right after the 202, before any progress: Asterisk tells it 503, the transferee still reaches the target', async () => {
    const call = await aliceTalksToBob();
    h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 50 });
    // bob's BYE lands between the 202 and the service's first transfer_progress.
    h.emu.beforeNext({ method: 'POST', path: /\/transfer_progress$/, run: () => h.emu.phoneHangsUp(call.bob.id) });
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });
    expect(await refer.waitForTermination()).toEqual([100, 503]);
    await waitUntil(() => transferLeg()?.bridgeId === call.bridgeId, 'carol to join alice');
    const summary = await finished();
    expect(summary.result).toBe('completed');
    expect(membersOf(h, call.bridgeId)).toEqual(sorted(call.alice.id, transferLeg()!.id));
    expect(h.emu.hangups.map((x) => [x.channelId, x.by])).toEqual([[call.bob.id, 'phone']]);
  });

  it('the transferee hanging up while the target rings cancels the new leg and ends with 503', async () => {
    const call = await aliceTalksToBob();
    h.emu.setEndpoint('carol', { kind: 'no-answer' });
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });
    await waitUntil(() => transferLeg()?.state === 'Ringing', 'carol to ring');
    const legId = transferLeg()!.id;
    h.emu.phoneHangsUp(call.alice.id);
    expect(await refer.waitForTermination()).toEqual([100, 503]);
    const summary = await finished();
    expect(summary.reason).toBe('the transferee hung up while the target was ringing');
    expect(h.emu.channel(legId)).toBeUndefined();
    expect(h.emu.hangups.find((x) => x.channelId === legId)?.by).toBe('ari');
  });

  it('TRANSFER_HOLD_MODE=moh: the transferee hears music while the target rings, and it stops', async () => {
    const call = await aliceTalksToBob({ TRANSFER_HOLD_MODE: 'moh', MOH_CLASS: 'jazz' });
    h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 80 });
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });
    await waitUntil(() => transferLeg()?.state === 'Ringing' && h.emu.channel(call.alice.id)?.mohPlaying === true, 'carol to ring and alice to hear music');
    expect(h.emu.channel(call.alice.id)).toMatchObject({ mohPlaying: true, mohClass: 'jazz', ringing: false });
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await finished();
    expect(h.emu.channel(call.alice.id)?.mohPlaying).toBe(false);
  });

  it('sends 200 at once to phones that want it, and still completes the transfer', async () => {
    const call = await aliceTalksToBob({ TRANSFER_IMMEDIATE_200_ENDPOINTS: 'bo.*' });
    h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 150 });
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    expect(transferLeg()?.state).toBe('Ringing');
    await finished();
    expect(membersOf(h, call.bridgeId)).toEqual(sorted(call.alice.id, transferLeg()!.id));
    expect(h.emu.channel(call.bob.id)).toBeUndefined();
  });

  it('with an immediate 200, a busy target still puts alice back with bob', async () => {
    const call = await aliceTalksToBob({ TRANSFER_IMMEDIATE_200_ENDPOINTS: 'bob' });
    h.emu.setEndpoint('carol', { kind: 'busy', afterMs: 100 });
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    const summary = await finished();
    expect(summary.result).toBe('failed');
    expect(membersOf(h, call.bridgeId)).toEqual(sorted(call.alice.id, call.bob.id));
    expect(h.emu.channel(call.alice.id)?.ringing).toBe(false);
  });
});

describe('recall (TRANSFER_RECALL)', () => {
  /** bob REFERs alice to carol, who rings; bob hangs up once the new leg rings (as many phones do after the 202). */
  async function bobLeavesWhileCarolRings(env: Record<string, string>, carol: Parameters<Harness['emu']['setEndpoint']>[1]) {
    const call = await aliceTalksToBob(env);
    h.emu.setEndpoint('carol', carol);
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });
    await waitUntil(() => refer.sipfrags.length === 1 && transferLeg()?.state === 'Ringing', '100 Trying and carol ringing');
    h.emu.phoneHangsUp(call.bob.id);
    return { ...call, refer };
  }

  it('=transferer: carol busy after bob left, bob is rung back with alice as the caller, and answers: alice talks to him', async () => {
    const call = await bobLeavesWhileCarolRings({ TRANSFER_RECALL: 'transferer' }, { kind: 'busy', afterMs: 100 });
    h.emu.setEndpoint('bob', { kind: 'answer', afterMs: 100 });
    // The transferer's phone is gone: its 603 goes nowhere, the call goes on.
    const summary = await transferFinished(h, 1, 5000);
    expect(summary).toMatchObject({ result: 'failed', reason: 'target busy: User busy; recall to the transferer (PJSIP/bob) answered: the transferees are connected to it' });
    expect(originates(h).map((r) => r.query.endpoint)).toEqual(['PJSIP/carol', 'PJSIP/bob']);
    const recall = h.emu.channels().find((c) => c.id !== call.alice.id)!;
    expect(recall.name).toMatch(/^PJSIP\/bob-/);
    expect(recall.caller).toEqual({ name: 'Alice', number: 'alice' });
    expect(membersOf(h, call.bridgeId)).toEqual(sorted(call.alice.id, recall.id));
    // alice heard ringback through carol's ringing and bob's, and no longer does.
    expect(h.emu.channel(call.alice.id)?.ringing).toBe(false);
  });

  it('=<destination>: carol does not answer, the fallback is busy too: alice is hung up with cause 17 (busy)', async () => {
    const call = await bobLeavesWhileCarolRings({ TRANSFER_RECALL: 'dave', TRANSFER_TIMEOUT: '0.3' }, { kind: 'no-answer' });
    h.emu.setEndpoint('dave', { kind: 'busy', afterMs: 50 });
    const summary = await transferFinished(h, 1, 5000);
    expect(summary.result).toBe('failed');
    expect(summary.reason).toMatch(/^target no-answer: .*; recall to the fallback destination dave failed \(busy: .*\): the transferees were hung up$/);
    expect(originates(h).map((r) => r.query.endpoint)).toEqual(['PJSIP/carol', 'PJSIP/dave']);
    expect(h.emu.hangups.find((x) => x.channelId === call.alice.id)).toMatchObject({ by: 'ari', cause: 17 });
    expect(h.emu.channels()).toEqual([]);
    expect(h.emu.bridges().map((b) => b.id)).toEqual([call.bridgeId]);
    expect(membersOf(h, call.bridgeId)).toEqual([]);
  });

  it('the transferee hangs up while the transferer is rung back: the recall is cancelled', async () => {
    const call = await bobLeavesWhileCarolRings({ TRANSFER_RECALL: 'transferer' }, { kind: 'reject', afterMs: 50 });
    h.emu.setEndpoint('bob', { kind: 'no-answer' });
    await waitUntil(() => h.emu.channels().some((c) => c.name.startsWith('PJSIP/bob-') && c.state === 'Ringing'), 'bob to be rung back');
    const recallId = h.emu.channels().find((c) => c.name.startsWith('PJSIP/bob-'))!.id;
    // Her ringback did not stop between carol's failure and the recall.
    expect(h.emu.channel(call.alice.id)?.ringing).toBe(true);
    h.emu.phoneHangsUp(call.alice.id);
    const summary = await transferFinished(h, 1, 5000);
    expect(summary.reason).toMatch(/; recall to the transferer \(PJSIP\/bob\) failed \(the transferees hung up during the recall\)/);
    expect(h.emu.hangups.find((x) => x.channelId === recallId)?.by).toBe('ari');
    expect(h.emu.channels()).toEqual([]);
  });

  it('no recall while the transferer is still in the call: 603, alice back with bob, nobody else dialled', async () => {
    const call = await aliceTalksToBob({ TRANSFER_RECALL: 'transferer' });
    h.emu.setEndpoint('carol', { kind: 'busy', afterMs: 50 });
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });
    expect(await refer.waitForTermination()).toEqual([100, 603]);
    await finished();
    expect(originates(h).map((r) => r.query.endpoint)).toEqual(['PJSIP/carol']);
    expect(membersOf(h, call.bridgeId)).toEqual(sorted(call.alice.id, call.bob.id));
  });
});

describe('destination policy', () => {
  let webhook: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (webhook ? webhook.close(() => r()) : r()));
    webhook = undefined;
  });

  /** A real policy webhook on loopback answering with `answer` after `delayMs`. */
  async function startWebhook(answer: unknown, delayMs = 0) {
    const received: unknown[] = [];
    webhook = createServer(async (req, res) => {
      let body = '';
      for await (const chunk of req) body += chunk;
      received.push(JSON.parse(body));
      await new Promise((r) => setTimeout(r, delayMs));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
    await new Promise<void>((r) => webhook!.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/policy`, received };
  }

  async function expectDeclined(call: BlindCall, destination: string, rule: string) {
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination });
    expect(await refer.waitForTermination()).toEqual([100, 603]);
    const summary = await finished();
    expect(summary).toMatchObject({ result: 'rejected' });
    expect(summary.reason).toContain(`(${rule})`);
    // Untouched: nothing dialled, nothing moved, nobody hung up, no ringback.
    expect(h.emu.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/channels/transfer-'))).toEqual([]);
    expect(membersOf(h, call.bridgeId)).toEqual(sorted(call.alice.id, call.bob.id));
    expect(h.emu.hangups).toEqual([]);
    expect(h.emu.channel(call.alice.id)?.ringing).toBe(false);
  }

  it('refuses a destination that could inject into the dial string', async () => {
    await expectDeclined(await aliceTalksToBob(), '1003&PJSIP/premium', 'invalid');
  });

  it('refuses a destination on the deny list, even when allowed too', async () => {
    await expectDeclined(await aliceTalksToBob({ TRANSFER_ALLOW: '.*', TRANSFER_DENY: '1900\\d*' }), '19001234', 'deny-list');
  });

  it('refuses a destination not on the allow list', async () => {
    await expectDeclined(await aliceTalksToBob({ TRANSFER_ALLOW: '1\\d{3}' }), '004930123', 'not-allowed');
  });

  it('refuses a transfer to the transferer itself, or into its own call', async () => {
    const call = await aliceTalksToBob();
    await expectDeclined(call, 'bob', 'loop');
  });

  it('refuses a transfer to the party already in the call', async () => {
    await expectDeclined(await aliceTalksToBob(), 'alice', 'loop');
  });

  it('asks the webhook, which sees the transfer described, and obeys its deny', async () => {
    const hook = await startWebhook({ allow: false, reason: 'after hours' });
    const call = await aliceTalksToBob({ TRANSFER_POLICY_URL: hook.url });
    await expectDeclined(call, 'carol', 'webhook-deny');
    expect(hook.received).toEqual([
      expect.objectContaining({
        type: 'transfer.policy',
        kind: 'blind',
        destination: 'carol',
        transferer: expect.objectContaining({ channelId: call.bob.id, endpoint: 'bob' }),
        transferees: [expect.objectContaining({ channelId: call.alice.id, callerId: { name: 'Alice', number: 'alice' } })],
        bridgeId: call.bridgeId,
      }),
    ]);
  });

  it('fails closed when the webhook is too slow', async () => {
    const hook = await startWebhook({ allow: true }, 500);
    await expectDeclined(await aliceTalksToBob({ TRANSFER_POLICY_URL: hook.url, TRANSFER_POLICY_TIMEOUT_MS: '100' }), 'carol', 'webhook-error');
  });

  it('a webhook that allows may choose the recall: carol busy after bob left, its fallback is dialled though TRANSFER_RECALL is off', async () => {
    const { url } = await startWebhook({ allow: true, recall: 'dave' });
    const call = await aliceTalksToBob({ TRANSFER_POLICY_URL: url });
    h.emu.setEndpoint('carol', { kind: 'busy', afterMs: 150 });
    h.emu.setEndpoint('dave', { kind: 'answer', afterMs: 50 });
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });
    await waitUntil(() => refer.sipfrags.length === 1 && transferLeg()?.state === 'Ringing', '100 Trying and carol ringing');
    h.emu.phoneHangsUp(call.bob.id);
    expect(await transferFinished(h, 1, 5000)).toMatchObject({ result: 'failed', reason: 'target busy: User busy; recall to the fallback destination dave answered: the transferees are connected to it' });
    expect(originates(h).map((r) => r.query.endpoint)).toEqual(['PJSIP/carol', 'PJSIP/dave']);
    const dave = h.emu.channels().find((c) => c.name.startsWith('PJSIP/dave-'))!;
    expect(membersOf(h, call.bridgeId)).toEqual(sorted(call.alice.id, dave.id));
  });

  it('dials when the webhook allows', async () => {
    const hook = await startWebhook({ allow: true });
    const call = await aliceTalksToBob({ TRANSFER_POLICY_URL: hook.url });
    h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 10 });
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    expect(hook.received).toHaveLength(1);
  });
});
