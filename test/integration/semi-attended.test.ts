// Semi-attended transfers played by SIPp phones on the real Asterisk: 1001
// (alice) calls 1002 (bob); bob's second call (port "consult") calls 1003
// (carol) and, while carol still RINGS, bob REFERs alice with a Replaces
// naming that early dialog (to-tag from the 180). When carol answers she
// talks to alice; bob's ringing consultation call is ended by Asterisk.
import { expect, it } from 'vitest';
import { exitOf, type SippPhone } from './phones.js';
import { scenarios, until } from './harness.js';
import { received, receivedSipfrags, type SipMessage } from './sipp-messages.js';
import { RtpListener } from './rtp-listener.js';

const listening = () => new Promise((r) => setTimeout(r, 300));

/** The status codes a phone received for its INVITE, in order. */
const inviteResponses = (messages: SipMessage[]) =>
  messages.filter((m) => m.direction === 'received' && m.status !== undefined && m.cseqMethod === 'INVITE').map((m) => m.status);

scenarios('semi-attended transfers on a real Asterisk', {}, (ctx) => {
  const { ari } = ctx;
  let carolRtp: RtpListener | undefined;
  let bobRtp: RtpListener | undefined;

  /**
   * alice calls bob; bob's consultation call rings carol, and bob REFERs
   * alice to it on its 180. carol rings 3 s, far longer than the REFER takes,
   * then answers (200) or says busy (486).
   */
  async function semiAttendedCall(carolAnswer: '200' | '486') {
    [carolRtp, bobRtp] = await Promise.all([RtpListener.open(), RtpListener.open()]);
    const carol = ctx.phone({
      scenario: 'uas_ring_answer.xml',
      phone: '1003',
      keys: { ring_ms: '3000', answer: carolAnswer, rtp_port: String(carolRtp.port) },
    });
    // Side B (the ringing consultation call) listens on the 3PCC socket: start it first.
    const bobConsult: SippPhone = ctx.phone({ scenario: 'uac_att_consult_early.xml', phone: '1002', port: 'consult', call: '1003', threePcc: true });
    await listening();
    const bobFirst = ctx.phone({
      scenario: 'uas_att_transferor.xml',
      phone: '1002',
      keys: { refer_target: '1003', rtp_port: String(bobRtp.port), hold: 'no' },
      threePcc: true,
    });
    await listening();
    const alice = ctx.phone({ scenario: 'uac_call_wait_bye.xml', phone: '1001', call: '1002' });
    return { alice, bobFirst, bobConsult, carol };
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
      await Promise.all([carolRtp?.close(), bobRtp?.close()]);
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
      await Promise.all([carolRtp?.close(), bobRtp?.close()]);
    }
  });
});
