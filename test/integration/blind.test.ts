// Blind transfers (REFER without Replaces) played by SIPp phones on the
// real Asterisk: 1001 (alice) calls 1002 (bob), who answers and REFERs her
// to a number; 1003 (carol) plays the target.
import { expect, it } from 'vitest';
import { exitOf } from './phones.js';
import { scenarios, until, type ScenarioContext } from './harness.js';
import { received, receivedSipfrags } from './sipp-messages.js';

const listening = () => new Promise((r) => setTimeout(r, 300));

/** alice calls bob, who REFERs her to `referTo`; carol plays `carolScenario` (if any). */
async function blindCall(ctx: ScenarioContext, carolScenario: string | undefined, referTo = '1003', bobScenario = 'uas_blind_referer.xml') {
  const carol = carolScenario ? ctx.phone({ scenario: carolScenario, phone: '1003' }) : undefined;
  const bob = ctx.phone({
    scenario: bobScenario,
    phone: '1002',
    keys: { refer_to: referTo, refer_params: '', refer_extra_header: 'X-Scenario: blind' },
  });
  await listening();
  const alice = ctx.phone({ scenario: 'uac_call_wait_bye.xml', phone: '1001', call: '1002' });
  return { alice, bob, carol };
}

scenarios('blind transfers on a real Asterisk', { TRANSFER_TIMEOUT: '4' }, (ctx) => {
  const { ari } = ctx;

  it('answered: bob hears 100 then 200, alice talks to carol, nothing left after they hang up', async () => {
    const { alice, bob, carol } = await blindCall(ctx, 'uas_answer.xml');
    expect(await exitOf(bob, 30_000)).toBe(0);
    expect(receivedSipfrags(bob.messages())).toEqual([100, 200]);
    await until('alice and carol to share a bridge', async () => (await ari.bridgedPhones()).length === 1, 10_000, ctx.explain);
    expect(await ari.bridgedPhones()).toEqual([['1001', '1003']]);
    expect(await ari.channelsOf('1002')).toEqual([]);

    const [aliceChannel] = await ari.channelsOf('1001');
    await ari.call('DELETE', `/channels/${encodeURIComponent(aliceChannel!.id)}`);
    expect(await exitOf(alice, 10_000)).toBe(0);
    expect(await exitOf(carol!, 10_000)).toBe(0);
    expect(received(carol!.messages(), 'BYE')).toHaveLength(1);
    await ctx.expectNothingLeft();
  });

  it('to a busy phone: bob hears 100 then 603, alice is back with bob', async () => {
    const { bob, carol } = await blindCall(ctx, 'uas_busy.xml');
    expect(await exitOf(carol!, 30_000)).toBe(0);
    await until('bob to hear the final NOTIFY', () => receivedSipfrags(bob.messages()).length === 2, 10_000, ctx.explain);
    expect(receivedSipfrags(bob.messages())).toEqual([100, 603]);
    expect(await ari.bridgedPhones()).toEqual([['1001', '1002']]);
    expect(await ari.channelsOf('1003')).toEqual([]);
    await ctx.hangUp('1001');
    await ctx.expectNothingLeft();
  });

  it('nobody answers within TRANSFER_TIMEOUT: 100 then 503, carol gets CANCEL, alice back with bob', async () => {
    const { bob, carol } = await blindCall(ctx, 'uas_ring_forever.xml');
    expect(await exitOf(carol!, 30_000)).toBe(0);
    expect(received(carol!.messages(), 'CANCEL')).toHaveLength(1);
    await until('bob to hear the final NOTIFY', () => receivedSipfrags(bob.messages()).length === 2, 10_000, ctx.explain);
    expect(receivedSipfrags(bob.messages())).toEqual([100, 503]);
    expect(await ari.bridgedPhones()).toEqual([['1001', '1002']]);
    await ctx.hangUp('1001');
    await ctx.expectNothingLeft();
  });

  it('bob hangs up right after the 202: Asterisk tells him 100 then 503 itself, and alice still ends up talking to carol', async () => {
    const { alice, bob, carol } = await blindCall(ctx, 'uas_answer.xml', '1003', 'uas_blind_referer_hangup.xml');
    expect(await exitOf(bob, 30_000)).toBe(0);
    expect(receivedSipfrags(bob.messages())).toEqual([100, 503]);
    await until('alice and carol to share a bridge', async () => (await ari.bridgedPhones()).length === 1, 10_000, ctx.explain);
    expect(await ari.bridgedPhones()).toEqual([['1001', '1003']]);
    expect(await ari.channelsOf('1002')).toEqual([]);
    await ctx.hangUp('1001');
    expect(await exitOf(alice, 10_000)).toBe(0);
    expect(await exitOf(carol!, 10_000)).toBe(0);
    await ctx.expectNothingLeft();
  });
});
