// Semi-attended transfers played by SIPp phones on the real Asterisk: 1001
// (alice) calls 1002 (bob); bob's second call (port "consult") calls 1003
// (carol) and, while carol still RINGS, bob REFERs alice with a Replaces
// naming that early dialog (to-tag from the 180). When carol answers she
// talks to alice; bob's ringing consultation call is ended by Asterisk.
import { expect, it } from 'vitest';
import { exitOf } from './phones.js';
import { scenarios, until } from './harness.js';
import { received, receivedSipfrags } from './sipp-messages.js';
import { inviteResponses, semiAttendedCall as semiAttendedCallOf } from './semi-attended-call.js';

scenarios('semi-attended transfers on a real Asterisk', {}, (ctx) => {
  const { ari } = ctx;
  let closeEars: (() => Promise<unknown>) | undefined;
  /** carol rings 3 s, far longer than the REFER takes. */
  async function semiAttendedCall(answer: '200' | '486') {
    const call = await semiAttendedCallOf(ctx, { answer, ringMs: 3000 });
    closeEars = call.closeEars;
    return call;
  }

  it('bob transfers while carol still rings: he hears 100 then 200, his ringing call gets 603, alice talks to carol once she answers', async () => {
    try {
      const { alice, bobFirst, bobConsult, carol } = await semiAttendedCall('200');
      expect(await exitOf(bobConsult, 30_000)).toBe(0);
      // Never answered: Asterisk ends the replaced early dialog with 603 Decline.
      expect(inviteResponses(bobConsult.messages())).toEqual([100, 180, 603]);
      expect(await exitOf(bobFirst, 10_000)).toBe(0);
      expect(receivedSipfrags(bobFirst.messages())).toEqual([100, 200]);
      expect(received(bobFirst.messages(), 'BYE')).toHaveLength(1);
      await until('alice and carol to share a bridge', async () => (await ari.bridgedPhones()).length === 1, 10_000, ctx.explain);
      expect(await ari.bridgedPhones()).toEqual([['1001', '1003']]);
      expect(await ari.channelsOf('1002')).toEqual([]);

      await ctx.hangUp('1001');
      expect(await exitOf(alice, 10_000)).toBe(0);
      expect(await exitOf(carol, 10_000)).toBe(0);
      expect(received(carol.messages(), 'BYE')).toHaveLength(1);
      await ctx.expectNothingLeft();
    } finally {
      await closeEars?.();
    }
  });

  it('carol is busy: bob hears 100 then 503, his ringing call gets 603, alice is back with bob', async () => {
    try {
      const { bobFirst, bobConsult, carol } = await semiAttendedCall('486');
      expect(await exitOf(carol, 30_000)).toBe(0);
      expect(await exitOf(bobConsult, 10_000)).toBe(0);
      expect(inviteResponses(bobConsult.messages())).toEqual([100, 180, 603]);
      await until('bob to hear the final NOTIFY', () => receivedSipfrags(bobFirst.messages()).length === 2, 10_000, ctx.explain);
      expect(receivedSipfrags(bobFirst.messages())).toEqual([100, 503]);
      expect(await ari.bridgedPhones()).toEqual([['1001', '1002']]);
      expect(await ari.channelsOf('1003')).toEqual([]);

      await ctx.hangUp('1001');
      expect(await exitOf(bobFirst, 10_000)).toBe(0);
      expect(received(bobFirst.messages(), 'BYE')).toHaveLength(1);
      await ctx.expectNothingLeft();
    } finally {
      await closeEars?.();
    }
  });
});
