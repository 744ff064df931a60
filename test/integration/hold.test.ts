// Hold and resume by re-INVITE, played by SIPp phones on the real Asterisk,
// judged by what each party actually HEARS: the phones' SDP offers an RTP
// port on which the test listens (rtp-listener.ts) and tells music from
// silence. 1001 (alice) calls 1002 (bob) through the service's router; bob
// puts her on hold (a=sendonly) and resumes (a=sendrecv), or holds her and
// transfers her to 1003 (carol) after consulting.
//
// Observed on Asterisk 22.10.1: with moh_passthrough=no (the default)
// chan_pjsip itself starts music on hold on the party left when the other
// holds, and stops it on resume; the service's HoldMusic (MOH_CLASS) then
// asks for the same class, which res_musiconhold ignores as already
// playing: one "Started music on hold" on the console, never two streams.
import { expect, it } from 'vitest';
import { exitOf, type SippPhone } from './phones.js';
import { scenarios, until } from './harness.js';
import { received, receivedSipfrags, type SipMessage } from './sipp-messages.js';
import { RtpListener, type Heard } from './rtp-listener.js';

const listening = () => new Promise((r) => setTimeout(r, 300));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Music on hold for 3 s or more carries at least this many 20 ms packets of sound (every file of the default class does in its first 3 s). */
const MUSIC = 50;

/** What a window of RTP says to a listener: music, silence (no packet, or only silent ones), or a little sound. */
const music = (heard: Heard) => (heard.sound >= MUSIC ? 'music' : heard.sound === 0 ? 'silence' : `${heard.sound} packets of sound in ${heard.packets}`);

const sent = (method: string, cseq: string) => (m: SipMessage) => m.direction === 'sent' && m.method === method && m.headers.get('cseq') === cseq;
const gotResponse = (status: number, cseq: string) => (m: SipMessage) => m.direction === 'received' && m.status === status && m.headers.get('cseq') === cseq;

/** When a step of a phone happened: after `notBefore` (the last look that did not see it) and by `by` (the first that did). */
interface Seen {
  notBefore: number;
  by: number;
}

scenarios('hold by re-INVITE on a real Asterisk', {}, (ctx) => {
  const { ari } = ctx;
  const listeners: RtpListener[] = [];
  const ears = async () => {
    const listener = await RtpListener.open();
    listeners.push(listener);
    return listener;
  };
  const closeEars = () => Promise.all(listeners.splice(0).map((l) => l.close()));

  /** Waits for a phone's step (it must not have happened yet when called) and says when it happened. */
  async function step(phone: SippPhone, what: string, match: (m: SipMessage) => boolean): Promise<Seen> {
    let notBefore = Date.now();
    await until(
      what,
      () => {
        if (phone.messages().some(match)) return true;
        notBefore = Date.now();
        return false;
      },
      20_000,
      ctx.explain,
    );
    return { notBefore, by: Date.now() };
  }

  it('bob holds: alice hears music on hold until bob resumes, then silence again; bob never hears music', async () => {
    try {
      const [aliceEar, bobEar] = await Promise.all([ears(), ears()]);
      const bob = ctx.phone({
        scenario: 'uas_hold.xml',
        phone: '1002',
        keys: { rtp_port: String(bobEar.port), hold_after_ms: '2000', hold_ms: '4000' },
      });
      await listening();
      const alice = ctx.phone({ scenario: 'uac_call_rtp.xml', phone: '1001', call: '1002', keys: { rtp_port: String(aliceEar.port) } });

      const talking = await step(bob, 'bob to answer', (m) => m.direction === 'received' && m.method === 'ACK');
      const holding = await step(bob, 'bob to put alice on hold', sent('INVITE', '101 INVITE'));
      const held = await step(bob, 'the hold to be accepted', gotResponse(200, '101 INVITE'));
      const resuming = await step(bob, 'bob to resume', sent('INVITE', '102 INVITE'));
      const resumed = await step(bob, 'the resume to be accepted', gotResponse(200, '102 INVITE'));
      await sleep(2500);
      expect(await ari.bridgedPhones()).toEqual([['1001', '1002']]);

      // Neither phone sends audio: what they get is what Asterisk plays them.
      expect({
        aliceBeforeHold: music(aliceEar.heard(talking.by, holding.notBefore)),
        aliceOnHold: music(aliceEar.heard(held.by + 300, resuming.notBefore)),
        aliceAfterResume: music(aliceEar.heard(resumed.by + 500, resumed.by + 2500)),
        // A held phone (sendonly) gets no RTP at all; this catches music left on bob's leg after he resumes.
        bob: music(bobEar.heard(talking.notBefore)),
      }).toEqual({
        aliceBeforeHold: 'silence',
        aliceOnHold: 'music',
        aliceAfterResume: 'silence',
        bob: 'silence',
      });

      await ctx.hangUp('1001');
      expect(await exitOf(alice, 10_000)).toBe(0);
      expect(await exitOf(bob, 10_000)).toBe(0);
      expect(received(bob.messages(), 'BYE')).toHaveLength(1);
      await ctx.expectNothingLeft();
    } finally {
      await closeEars();
    }
  });

  it('bob holds alice, consults carol and transfers: alice hears music until the transfer, then talks to carol without music', async () => {
    try {
      const [aliceEar, bobEar, carolEar] = await Promise.all([ears(), ears(), ears()]);
      const carol = ctx.phone({ scenario: 'uas_ring_answer.xml', phone: '1003', keys: { ring_ms: '300', answer: '200', rtp_port: String(carolEar.port) } });
      // Side B (the consultation call) listens on the 3PCC socket: start it first.
      const bobConsult = ctx.phone({
        scenario: 'uac_att_consult.xml',
        phone: '1002',
        port: 'consult',
        call: '1003',
        keys: { consult_ms: '3000' },
        threePcc: true,
      });
      await listening();
      const bobFirst = ctx.phone({
        scenario: 'uas_att_transferor.xml',
        phone: '1002',
        keys: { refer_target: '1003', rtp_port: String(bobEar.port), hold: 'yes' },
        threePcc: true,
      });
      await listening();
      const alice = ctx.phone({ scenario: 'uac_call_rtp.xml', phone: '1001', call: '1002', keys: { rtp_port: String(aliceEar.port) } });

      const held = await step(bobFirst, 'bob to put alice on hold', gotResponse(200, '101 INVITE'));
      const referring = await step(bobFirst, 'bob to REFER', sent('REFER', '102 REFER'));
      const transferred = await step(bobFirst, 'bob to hear the transfer succeed', (m) => receivedSipfrags([m])[0] === 200);
      await until('alice and carol to share a bridge', async () => (await ari.bridgedPhones()).length === 1, 10_000, ctx.explain);
      await sleep(2500);
      expect(await ari.bridgedPhones()).toEqual([['1001', '1003']]);
      expect(receivedSipfrags(bobFirst.messages())).toEqual([100, 200]);

      expect({
        aliceWhileBobConsults: music(aliceEar.heard(held.by + 300, referring.notBefore)),
        aliceWithCarol: music(aliceEar.heard(transferred.by + 500, transferred.by + 2500)),
        carol: music(carolEar.heard(0)),
      }).toEqual({
        aliceWhileBobConsults: 'music',
        aliceWithCarol: 'silence',
        carol: 'silence',
      });

      expect(await exitOf(bobFirst, 10_000)).toBe(0);
      expect(await exitOf(bobConsult, 10_000)).toBe(0);
      expect(await ari.channelsOf('1002')).toEqual([]);
      await ctx.hangUp('1001');
      expect(await exitOf(alice, 10_000)).toBe(0);
      expect(await exitOf(carol, 10_000)).toBe(0);
      await ctx.expectNothingLeft();
    } finally {
      await closeEars();
    }
  });
});
