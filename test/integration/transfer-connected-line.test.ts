// Connected line after transfers, with the service, on the real Asterisk:
// once a transfer is complete, alice's phone and carol's phone are each told
// whom they now talk to, in the UPDATE or re-INVITE Asterisk sends them
// (P-Asserted-Identity); with TRANSFER_CONNECTED_LINE=off, nothing.
//
//   alice 1001 (uac_call_allow.xml: UPDATE in her Allow, a display name with
//   quotes, parentheses and a comma) calls bob 1002; carol 1003
//   (uas_answer_allow.xml: no UPDATE in her Allow, so re-INVITEs) is the target.
//
// Who is told what (src/transfer/connected-line.ts): alice, "carol", is told
// the number dialled for carol's leg (a leg the service dials carries the
// caller's id, not carol's); carol is told alice's caller id.
//
// CONNECTED_LINE_TRACES=<dir> writes each phone's SIP messages and the
// service's transfer steps there (test/fixtures/traces/transfer-connected-line/).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { exitOf, type SippPhone } from './phones.js';
import { scenarios, until, type ScenarioContext } from './harness.js';
import { receivedIdentityUpdates, receivedSipfrags } from './sipp-messages.js';

const TRACES = process.env.CONNECTED_LINE_TRACES;
const ALLOW = 'INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, OPTIONS';
const ALLOW_UPDATE = `${ALLOW}, UPDATE`;
/** alice's From display name, as SIP quotes it. */
const ALICE_DISPLAY = '"Alice \\"Al\\" (Sales), Jr." ';
/** How long a phone must stay unbothered to count as "received nothing more". */
const QUIET_MS = 1500;

const listening = () => new Promise((r) => setTimeout(r, 300));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Call {
  alice: SippPhone;
  carol: SippPhone;
  /** Every phone of bob's. */
  bob: SippPhone[];
}

/** alice calls bob, who REFERs her to 1003 (blind); with `hangUp`, bob hangs up right after the 202. */
async function blind(ctx: ScenarioContext, hangUp = false): Promise<Call> {
  const carol = ctx.phone({ scenario: 'uas_answer_allow.xml', phone: '1003', keys: { allow: ALLOW } });
  const bob = ctx.phone({
    scenario: hangUp ? 'uas_blind_referer_hangup.xml' : 'uas_blind_referer.xml',
    phone: '1002',
    keys: { refer_to: '1003', refer_params: '', refer_extra_header: 'X-Scenario: blind' },
  });
  await listening();
  const alice = ctx.phone({ scenario: 'uac_call_allow.xml', phone: '1001', call: '1002', keys: { allow: ALLOW_UPDATE, display: ALICE_DISPLAY } });
  return { alice, carol, bob: [bob] };
}

/** alice calls bob; bob's second call reaches carol; bob REFERs alice to it (attended). */
async function attended(ctx: ScenarioContext): Promise<Call> {
  const carol = ctx.phone({ scenario: 'uas_answer_allow.xml', phone: '1003', keys: { allow: ALLOW } });
  const bobConsult = ctx.phone({ scenario: 'uac_att_consult.xml', phone: '1002', port: 'consult', call: '1003', keys: { consult_ms: '1000' }, threePcc: true });
  await listening();
  const bobFirst = ctx.phone({ scenario: 'uas_att_referer.xml', phone: '1002', keys: { refer_target: '1003' }, threePcc: true });
  await listening();
  const alice = ctx.phone({ scenario: 'uac_call_allow.xml', phone: '1001', call: '1002', keys: { allow: ALLOW_UPDATE, display: ALICE_DISPLAY } });
  return { alice, carol, bob: [bobFirst, bobConsult] };
}

const updates = (p: SippPhone) => receivedIdentityUpdates(p.messages());

/** bob heard 100 then `final`, his calls are gone, alice and carol share a bridge. */
async function transferred(ctx: ScenarioContext, c: Call, final = 200): Promise<void> {
  for (const p of c.bob) expect(await exitOf(p, 30_000), ctx.explain()).toBe(0);
  // A bob who hangs up right after the 202 is told 503 by Asterisk itself; the transfer goes on.
  expect(receivedSipfrags(c.bob[0]!.messages())).toEqual([100, final]);
  await until('alice and carol to share a bridge', async () => JSON.stringify(await ctx.ari.bridgedPhones()) === '[["1001","1003"]]', 10_000, ctx.explain);
  expect(await ctx.ari.channelsOf('1002')).toEqual([]);
}

/** alice hangs up; both phones end well; nothing left. */
async function hangUp(ctx: ScenarioContext, c: Call): Promise<void> {
  await ctx.hangUp('1001');
  expect(await exitOf(c.alice, 10_000)).toBe(0);
  expect(await exitOf(c.carol, 10_000)).toBe(0);
  await ctx.expectNothingLeft();
}

function record(name: string, ctx: ScenarioContext, c: Call): void {
  if (!TRACES) return;
  mkdirSync(TRACES, { recursive: true });
  for (const [who, p] of [['1001', c.alice], ['1003', c.carol], ...c.bob.map((p, i) => [i === 0 ? '1002' : '1002-consult', p] as const)] as const) {
    writeFileSync(join(TRACES, `${name}.${who}.sipp-messages.txt`), p.trace());
  }
  const steps = ctx.logs.lines.filter((l) => typeof l.step === 'string').map((l) => JSON.stringify({ step: l.step, msg: l.msg, ...(l.value ? { channelId: l.channelId, value: l.value } : {}) }));
  writeFileSync(join(TRACES, `${name}.steps.jsonl`), `${steps.join('\n')}\n`);
}

/** What carol's phone is told: alice's caller id, as Asterisk writes it (see the fixtures README: the backslashes of her display name are kept by PJSIP, then escaped). */
const ALICE_PAI = '"Alice \\\\\\"Al\\\\\\" (Sales), Jr." <sip:1001@127.0.0.1>';

async function toldOnce(ctx: ScenarioContext, c: Call, name: string): Promise<void> {
  await until('both phones to be told and to answer', () => updates(c.alice).some((u) => u.answered) && updates(c.carol).some((u) => u.answered), 5000, ctx.explain);
  // Anything else Asterisk would send (a bridge's own update) comes within this.
  await sleep(QUIET_MS);
  record(name, ctx, c);
  expect(updates(c.alice)).toEqual([{ method: 'UPDATE', pai: '<sip:1003@127.0.0.1>', answered: true }]);
  expect(updates(c.carol)).toEqual([{ method: 'INVITE', pai: ALICE_PAI, answered: true }]);
}

scenarios('connected line after transfers on a real Asterisk', {}, (ctx) => {
  for (const [kind, play] of [['blind', blind], ['attended', attended]] as const) {
    it(`${kind}: alice's phone is told <1003> (UPDATE), carol's phone alice's name and number (re-INVITE), once each and nothing before`, async () => {
      const c = await play(ctx);
      await transferred(ctx, c);
      await toldOnce(ctx, c, kind);
      await hangUp(ctx, c);
    });
  }

  it('blind, bob gone right after the 202 (nobody leaves the bridge after the join): both phones are still told, once each', async () => {
    const c = await blind(ctx, true);
    await transferred(ctx, c, 503);
    await toldOnce(ctx, c, 'blind-transferer-gone');
    await hangUp(ctx, c);
  });
});

// Off: the service tells nobody anything. Where a leg leaves a bridge of
// three after the join, Asterisk itself still sends its own update when the
// endpoints have send_connected_line=yes (README): so off is shown where
// nobody leaves, bob gone right after the 202.
scenarios('TRANSFER_CONNECTED_LINE=off on a real Asterisk', { TRANSFER_CONNECTED_LINE: 'off' }, (ctx) => {
  it('blind, bob gone right after the 202: neither alice\'s phone nor carol\'s is sent an update', async () => {
    const c = await blind(ctx, true);
    await transferred(ctx, c, 503);
    await sleep(QUIET_MS);
    record('blind-transferer-gone-off', ctx, c);
    expect({ alice: updates(c.alice), carol: updates(c.carol) }).toEqual({ alice: [], carol: [] });
    await hangUp(ctx, c);
  });
});
