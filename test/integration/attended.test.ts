// Attended transfers (REFER with Replaces) played by SIPp phones on the real
// Asterisk: 1001 (alice) calls 1002 (bob); bob's second call (port
// "consult") calls 1003 (carol); bob REFERs alice to carol.
import { expect, it } from 'vitest';
import { attendedCall } from './attended-call.js';
import { exitOf } from './phones.js';
import { scenarios, until } from './harness.js';
import { received, receivedSipfrags } from './sipp-messages.js';

scenarios('attended transfers on a real Asterisk', {}, (ctx) => {
  const { ari } = ctx;

  it('bob hears 100 then 200, alice talks to carol, both of bob calls are gone', async () => {
    const { alice, bobFirst, bobConsult, carol } = await attendedCall(ctx, 2000);
    expect(await exitOf(bobFirst, 30_000)).toBe(0);
    expect(receivedSipfrags(bobFirst.messages())).toEqual([100, 200]);
    expect(await exitOf(bobConsult, 10_000)).toBe(0);
    expect(received(bobConsult.messages(), 'BYE')).toHaveLength(1);
    await until('alice and carol to share a bridge', async () => (await ari.bridgedPhones()).length === 1, 10_000, ctx.explain);
    expect(await ari.bridgedPhones()).toEqual([['1001', '1003']]);
    expect(await ari.channelsOf('1002')).toEqual([]);

    const [aliceChannel] = await ari.channelsOf('1001');
    await ari.call('DELETE', `/channels/${encodeURIComponent(aliceChannel!.id)}`);
    expect(await exitOf(alice, 10_000)).toBe(0);
    expect(await exitOf(carol, 10_000)).toBe(0);
    await ctx.expectNothingLeft();
  });

  it('REFER the instant the consultation call is answered: still 100 then 200, alice talks to carol', async () => {
    const { alice, bobFirst, bobConsult, carol } = await attendedCall(ctx, 0);
    expect(await exitOf(bobFirst, 30_000)).toBe(0);
    expect(receivedSipfrags(bobFirst.messages())).toEqual([100, 200]);
    expect(await exitOf(bobConsult, 10_000)).toBe(0);
    await until('alice and carol to share a bridge', async () => (await ari.bridgedPhones()).length === 1, 10_000, ctx.explain);
    expect(await ari.bridgedPhones()).toEqual([['1001', '1003']]);
    await ctx.hangUp('1001');
    expect(await exitOf(alice, 10_000)).toBe(0);
    expect(await exitOf(carol, 10_000)).toBe(0);
    await ctx.expectNothingLeft();
  });
});
