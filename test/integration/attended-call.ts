// The set-up of an attended transfer with SIPp phones: 1001 (alice) calls
// 1002 (bob); bob's second call (port "consult") reaches 1003 (carol), who
// answers; after `consultMs` of talking bob REFERs alice to that call.
import type { ScenarioContext } from './harness.js';

const listening = () => new Promise((r) => setTimeout(r, 300));

/** alice calls bob; bob's second call reaches carol, talks `consultMs`, and REFERs alice to it. */
export async function attendedCall(ctx: ScenarioContext, consultMs: number) {
  const carol = ctx.phone({ scenario: 'uas_answer.xml', phone: '1003' });
  // Side B (the consultation call) listens on the 3PCC socket: start it first.
  const bobConsult = ctx.phone({
    scenario: 'uac_att_consult.xml',
    phone: '1002',
    port: 'consult',
    call: '1003',
    keys: { consult_ms: String(consultMs) },
    threePcc: true,
  });
  await listening();
  const bobFirst = ctx.phone({ scenario: 'uas_att_referer.xml', phone: '1002', keys: { refer_target: '1003' }, threePcc: true });
  await listening();
  const alice = ctx.phone({ scenario: 'uac_call_wait_bye.xml', phone: '1001', call: '1002' });
  return { alice, bobFirst, bobConsult, carol };
}
