// Recall (TRANSFER_RECALL) on the real Asterisk: alice (1001) calls bob
// (1002), who REFERs her to carol (1003) and hangs up right after the 202,
// as many phones do. carol never answers (TRANSFER_TIMEOUT); with bob gone,
// alice is not left alone: bob's phone is rung back (a new SIPp phone on
// his port, started once the first one is done), or the fallback 1004.
import { expect, it } from 'vitest';
import { exitOf, type SippPhone } from './phones.js';
import { scenarios, until, type ScenarioContext } from './harness.js';
import { received, receivedSipfrags } from './sipp-messages.js';

const listening = () => new Promise((r) => setTimeout(r, 300));

/** bob REFERs alice to carol, who rings until TRANSFER_TIMEOUT, and leaves at once; resolves once bob's phone is done. */
async function bobTransfersAndLeaves(ctx: ScenarioContext): Promise<{ alice: SippPhone; carol: SippPhone }> {
  const carol = ctx.phone({ scenario: 'uas_ring_forever.xml', phone: '1003' });
  const bob = ctx.phone({
    scenario: 'uas_blind_referer_hangup.xml',
    phone: '1002',
    keys: { refer_to: '1003', refer_params: '', refer_extra_header: 'X-Scenario: recall' },
  });
  await listening();
  const alice = ctx.phone({ scenario: 'uac_call_wait_bye.xml', phone: '1001', call: '1002' });
  await until('carol to ring', async () => (await ctx.ari.channelsOf('1003')).length === 1, 10_000, ctx.explain);
  // His scenario lingers 3 s after its BYE; carol rings for 8 (TRANSFER_TIMEOUT).
  expect(await exitOf(bob, 15_000)).toBe(0);
  // Asterisk answered his REFER's subscription itself once he hung up.
  expect(receivedSipfrags(bob.messages())).toEqual([100, 503]);
  expect(await ctx.ari.channelsOf('1003')).toHaveLength(1);
  return { alice, carol };
}

/**
 * What a rung-back phone was shown: the call's From and identity, then the identity of
 * the re-INVITE that follows the answer (Asterisk's connected-line update,
 * asterisk-config's phones taking them).
 */
function shownTo(phone: SippPhone): { from: string | undefined; identity: string | undefined }[] {
  return received(phone.messages(), 'INVITE').map((m) => ({ from: m.headers.get('from')?.replace(/;tag=.*$/, ''), identity: m.headers.get('p-asserted-identity') }));
}

scenarios('recall to the transferer on a real Asterisk', { TRANSFER_TIMEOUT: '8', TRANSFER_RECALL: 'transferer' }, (ctx) => {
  it('carol does not answer after bob left: bob is rung back, alice calling, he answers and they talk again', async () => {
    const { alice, carol } = await bobTransfersAndLeaves(ctx);
    const bobAgain = ctx.phone({ scenario: 'uas_answer.xml', phone: '1002' });
    expect(await exitOf(carol, 15_000)).toBe(0);
    expect(received(carol.messages(), 'CANCEL')).toHaveLength(1);
    await until('alice and bob to share a bridge again', async () => (await ctx.ari.bridgedPhones()).length === 1, 15_000, ctx.explain);
    expect(await ctx.ari.bridgedPhones()).toEqual([['1001', '1002']]);
    // His phone shows who comes back to him: alice, when it rings and once answered.
    expect(shownTo(bobAgain)).toEqual([
      { from: '<sip:1001@127.0.0.1>', identity: '<sip:1001@127.0.0.1>' },
      { from: '<sip:1001@127.0.0.1>', identity: '<sip:1001@127.0.0.1>' },
    ]);
    await ctx.hangUp('1001');
    expect(await exitOf(alice, 10_000)).toBe(0);
    expect(await exitOf(bobAgain, 10_000)).toBe(0);
    expect(received(bobAgain.messages(), 'BYE')).toHaveLength(1);
    await ctx.expectNothingLeft();
  });
});

scenarios('recall to a fallback destination on a real Asterisk', { TRANSFER_TIMEOUT: '8', TRANSFER_RECALL: '1004', TRANSFER_RECALL_TIMEOUT: '5' }, (ctx) => {
  it('carol does not answer after bob left: the fallback 1004 answers, alice talks to it', async () => {
    const { alice, carol } = await bobTransfersAndLeaves(ctx);
    const fallback = ctx.phone({ scenario: 'uas_answer.xml', phone: '1004' });
    expect(await exitOf(carol, 15_000)).toBe(0);
    await until('alice and 1004 to share a bridge', async () => (await ctx.ari.bridgedPhones()).length === 1, 15_000, ctx.explain);
    expect(await ctx.ari.bridgedPhones()).toEqual([['1001', '1004']]);
    await ctx.hangUp('1001');
    expect(await exitOf(alice, 10_000)).toBe(0);
    expect(await exitOf(fallback, 10_000)).toBe(0);
    await ctx.expectNothingLeft();
  });

  it('the fallback is busy too: alice gets a BYE saying busy (Q.850 cause 17), nothing is left', async () => {
    const { alice, carol } = await bobTransfersAndLeaves(ctx);
    const fallback = ctx.phone({ scenario: 'uas_busy.xml', phone: '1004' });
    expect(await exitOf(carol, 15_000)).toBe(0);
    expect(await exitOf(fallback, 15_000)).toBe(0);
    expect(await exitOf(alice, 15_000)).toBe(0);
    const byes = received(alice.messages(), 'BYE');
    expect(byes).toHaveLength(1);
    expect(byes[0]!.headers.get('reason')).toBe('Q.850;cause=17');
    await ctx.expectNothingLeft();
  });
});
