// The set-up of a semi-attended transfer with SIPp phones: 1001 (alice)
// calls 1002 (bob); bob's second call (port "consult") calls 1003 (carol)
// and, on its 180, bob REFERs alice with a Replaces naming that early
// dialog. carol rings `ringMs`, then answers (200) or says busy (486).
import type { ScenarioContext } from './harness.js';
import type { SippPhone } from './phones.js';
import { RtpListener } from './rtp-listener.js';

const listening = () => new Promise((r) => setTimeout(r, 300));

/** The status codes a phone received for its INVITE, in order. */
export const inviteResponses = (messages: { direction: string; status?: number; cseqMethod?: string }[]) =>
  messages.filter((m) => m.direction === 'received' && m.status !== undefined && m.cseqMethod === 'INVITE').map((m) => m.status);

export async function semiAttendedCall(ctx: ScenarioContext, carolSays: { answer: '200' | '486'; ringMs: number }) {
  const [carolRtp, bobRtp] = await Promise.all([RtpListener.open(), RtpListener.open()]);
  const carol = ctx.phone({
    scenario: 'uas_ring_answer.xml',
    phone: '1003',
    keys: { ring_ms: String(carolSays.ringMs), answer: carolSays.answer, rtp_port: String(carolRtp.port) },
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
  return { alice, bobFirst, bobConsult, carol, closeEars: () => Promise.all([carolRtp.close(), bobRtp.close()]) };
}
