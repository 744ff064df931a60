// Connected line on the real Asterisk, with raw ARI and no service: the
// groundwork of telling both remaining parties of a transfer whom they now
// talk to (issue 11 item 4). Facts and a recorded ladder:
// test/fixtures/traces/connected-line/README.md.
//
// Asterisk here is its own instance (local-asterisk.ts), a copy of
// asterisk-config/ (whose [phone-endpoint] has send_connected_line,
// send_pai and send_rpid on) with two phones changed:
//   [1002]            send_pai = no, send_rpid = no   (no identity header to send)
//   [1004]            send_connected_line = no
//
//   alice (1001) calls <callee>; the app answers her, originates PJSIP/<callee>
//   with callerId "<1001>" (as ROUTING=dial does), bridges both (mixing), then
//   POST /channels/{id}/variable?variable=CONNECTEDLINE(...)&value=...
//
// The SIPp phones (uac_call_allow.xml, uas_answer_allow.xml) answer an
// in-dialog re-INVITE or UPDATE and record it; their Allow header (-key
// allow) decides which of the two Asterisk sends.
//
// CONNECTED_LINE_TRACES=<dir> writes each test's ARI exchanges and the
// phones' SIP messages there (test/fixtures/traces/connected-line/ was
// recorded so): <name>.events.jsonl, <name>.rest.jsonl, <name>.steps.txt,
// <name>.<phone>.sipp-messages.txt.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { AriClient, channelIdOf, ev, ScenarioLog, type AriEvent, type EventSocket } from '../recorder/ari-log.js';
import { CONFIG_DEFAULTS, type AsteriskTarget } from './asterisk-target.js';
import { until } from './harness.js';
import type { LocalAsterisk } from './local-asterisk.js';
import { onOwnAsterisk, startOwnAsterisk } from './own-asterisk.js';
import { exitOf, SippPhone } from './phones.js';
import { parseTimedSippMessages, type TimedSipMessage } from './sipp-messages.js';

const { app, username, password } = CONFIG_DEFAULTS;
const TRACES = process.env.CONNECTED_LINE_TRACES;

/** What a phone says it allows: without UPDATE (connected line comes as re-INVITE), and with it. */
const ALLOW = 'INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, OPTIONS';
const ALLOW_UPDATE = `${ALLOW}, UPDATE`;
/** How long a phone must stay unbothered to count as "received nothing". */
const QUIET_MS = 1500;


type Phone = '1001' | '1002' | '1003' | '1004';

/** asterisk-config/pjsip.conf (connected-line updates on) with the two phones changed as the header says. */
function connectedLineOn(etc: string): void {
  const file = join(etc, 'pjsip.conf');
  let text = readFileSync(file, 'utf8');
  const replacements: [RegExp, string][] = [
    // Kept as it is: only checked to be there.
    [/^send_connected_line = yes\nsend_pai = yes\nsend_rpid = yes$/m, 'send_connected_line = yes\nsend_pai = yes\nsend_rpid = yes'],
    [/^\[1002\]\(phone-endpoint\)$/m, '[1002](phone-endpoint)\nsend_pai = no\nsend_rpid = no'],
    [/^\[1004\]\(phone-endpoint\)$/m, '[1004](phone-endpoint)\nsend_connected_line = no'],
  ];
  for (const [pattern, value] of replacements) {
    if (!pattern.test(text)) throw new Error(`${file}: expected a line matching ${pattern}; asterisk-config changed?`);
    text = text.replace(pattern, value);
  }
  writeFileSync(file, text);
}

interface Channel {
  id: string;
  name: string;
  state: string;
  caller: { name: string; number: string };
  connected: { name: string; number: string };
}

/** A connected-line update as a phone received it: an in-dialog re-INVITE or an UPDATE. */
interface Update {
  method: string;
  at: number;
  pai: string | undefined;
  rpid: string | undefined;
  privacy: string | undefined;
  /** The request carried SDP. */
  sdp: boolean;
  cseq: string | undefined;
}

/** The in-dialog INVITEs (To has a tag) and UPDATEs a phone received, in order. */
function updatesOf(phone: SippPhone): Update[] {
  return parseTimedSippMessages(phone.trace())
    .filter((m: TimedSipMessage) => m.direction === 'received' && (m.method === 'UPDATE' || (m.method === 'INVITE' && /;\s*tag=/.test(m.headers.get('to') ?? ''))))
    .map((m) => ({
      method: m.method!,
      at: m.at,
      pai: m.headers.get('p-asserted-identity'),
      rpid: m.headers.get('remote-party-id'),
      privacy: m.headers.get('privacy'),
      sdp: /^v=0/m.test(m.body),
      cseq: m.headers.get('cseq'),
    }));
}

/** The phone answered the request of this CSeq with 200. */
function answered(phone: SippPhone, cseq: string | undefined): boolean {
  return phone.messages().some((m) => m.direction === 'sent' && m.status === 200 && m.headers.get('cseq') === cseq);
}

interface Call {
  alice: string;
  callee: string;
  bridge: string;
  alicePhone: SippPhone;
  calleePhone: SippPhone;
  /** What each phone received while the call was set up and bridged (the join's own updates). */
  atJoin: { alice: Update[]; callee: Update[] };
}

onOwnAsterisk('connected line on the real Asterisk (raw ARI, no service)', () => {
  let asterisk: LocalAsterisk;
  let target: AsteriskTarget;
  let log: ScenarioLog;
  let ari: AriClient;
  let events: EventSocket;
  let phones: SippPhone[] = [];

  const note = (fact: string) => log.step(`FACT ${fact}`);
  const explain = () => `${phones.map((p) => p.diagnostics()).join('\n')}\n--- steps ---\n${log.steps.slice(-60).join('\n')}`;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  async function leftOn(): Promise<{ channels: string[]; bridges: string[] }> {
    const channels = ((await ari.call('GET', '/channels')).body ?? []) as Channel[];
    const bridges = ((await ari.call('GET', '/bridges')).body ?? []) as { id: string }[];
    return { channels: channels.map((c) => c.name), bridges: bridges.map((b) => b.id) };
  }

  async function clean(): Promise<void> {
    for (const c of ((await ari.call('GET', '/channels')).body ?? []) as Channel[]) await ari.call('DELETE', `/channels/${encodeURIComponent(c.id)}`);
    for (const b of ((await ari.call('GET', '/bridges')).body ?? []) as { id: string }[]) await ari.call('DELETE', `/bridges/${encodeURIComponent(b.id)}`);
  }

  function phone(ext: Phone, scenario: string, allow: string, call?: string): SippPhone {
    const p = SippPhone.start(
      { scenario, phone: ext, port: target.phones[ext], keys: { allow, ...(call ? { display: '' } : {}) }, ...(call ? { call } : {}) },
      { host: '127.0.0.1', port: target.sipPort },
    );
    phones.push(p);
    return p;
  }

  /**
   * alice (1001) calls `callee`; the app answers her, originates the callee
   * (callerId "<1001>", as ROUTING=dial dials with the caller's id) and
   * bridges both, with or without inhibitConnectedLineUpdates.
   */
  async function call(callee: Phone, allow: string, options: { inhibit?: boolean } = {}): Promise<Call> {
    const calleePhone = phone(callee, 'uas_answer_allow.xml', allow);
    await sleep(300);
    const since = events.received.length;
    const alicePhone = phone('1001', 'uac_call_allow.xml', allow, callee);
    const alice = channelIdOf(await events.waitFor(ev.of('StasisStart'), 'alice in Stasis', 10_000, since))!;
    await ari.call('POST', `/channels/${alice}/answer`);
    const sinceCallee = events.received.length;
    const originate = await ari.call('POST', '/channels', { endpoint: `PJSIP/${callee}`, app, appArgs: 'callee', callerId: '<1001>', timeout: 20 });
    expect(originate.status, explain()).toBe(200);
    const calleeId = (originate.body as Channel).id;
    await events.waitFor(ev.of('StasisStart', calleeId), 'the callee answered', 10_000, sinceCallee);
    const bridge = ((await ari.call('POST', '/bridges', { type: 'mixing' })).body as { id: string }).id;
    const added = await ari.call('POST', `/bridges/${bridge}/addChannel`, {
      channel: `${alice},${calleeId}`,
      ...(options.inhibit ? { inhibitConnectedLineUpdates: 'true' } : {}),
    });
    expect(added.status).toBe(204);
    await until('both in the bridge', async () => (await bridgeOf(bridge)).length === 2, 5000, explain);
    // Whatever the join itself sends arrives within this.
    await sleep(QUIET_MS);
    const atJoin = { alice: updatesOf(alicePhone), callee: updatesOf(calleePhone) };
    note(`${options.inhibit ? 'addChannel inhibitConnectedLineUpdates=true' : 'addChannel'}: at the join alice received ${show(atJoin.alice)}, ${callee} received ${show(atJoin.callee)}`);
    note(`channels after the join: ${JSON.stringify(await Promise.all([alice, calleeId].map(async (id) => connectedOf(id))))}`);
    return { alice, callee: calleeId, bridge, alicePhone, calleePhone, atJoin };
  }

  const bridgeOf = async (id: string) => ((await ari.call('GET', `/bridges/${id}`)).body as { channels: string[] }).channels.sort();

  async function connectedOf(id: string): Promise<{ name: string; caller: Channel['caller']; connected: Channel['connected'] }> {
    const c = (await ari.call('GET', `/channels/${id}`)).body as Channel;
    return { name: c.name, caller: c.caller, connected: c.connected };
  }

  const show = (updates: Update[]) =>
    updates.length === 0 ? 'nothing' : updates.map((u) => `${u.method}${u.sdp ? '+SDP' : ''} [PAI ${u.pai ?? '-'}] [RPID ${u.rpid ?? '-'}]${u.privacy ? ` [Privacy ${u.privacy}]` : ''}`).join(', ');

  /** POST /channels/{id}/variable; resolves with the time it was sent. */
  async function setVariable(channel: string, variable: string, value: string): Promise<number> {
    const sent = Date.now();
    const res = await ari.call('POST', `/channels/${channel}/variable`, { variable, value });
    expect(res.status, JSON.stringify(res.body)).toBe(204);
    return sent;
  }

  /** The phone's next update after the `seen` it had, answered 200 by the phone; and how long after `sent` it arrived. */
  async function nextUpdate(p: SippPhone, seen: number, sent: number, what: string): Promise<Update & { after: number }> {
    await until(what, () => updatesOf(p).length > seen && answered(p, updatesOf(p)[seen]!.cseq), 5000, explain);
    const update = updatesOf(p)[seen]!;
    return { ...update, after: Math.round(update.at - sent) };
  }

  /** The phone got nothing new (beyond `seen`) for QUIET_MS. */
  async function expectQuiet(p: SippPhone, seen: number): Promise<void> {
    await sleep(QUIET_MS);
    expect(show(updatesOf(p).slice(seen))).toBe('nothing');
  }

  async function variable(channel: string, name: string): Promise<unknown> {
    return (await ari.call('GET', `/channels/${channel}/variable`, { variable: name })).body;
  }

  /** The call is still up: both channels Up in the bridge, both phones still in their scenario. */
  async function expectStillUp(c: Call): Promise<void> {
    expect(await bridgeOf(c.bridge)).toEqual([c.alice, c.callee].sort());
    const states = await Promise.all([c.alice, c.callee].map(async (id) => ((await ari.call('GET', `/channels/${id}`)).body as Channel).state));
    expect(states).toEqual(['Up', 'Up']);
    expect([c.alicePhone.done, c.calleePhone.done]).toEqual([false, false]);
  }

  /** The app hangs both up: both phones get BYE and end well; nothing is left. */
  async function hangUpAndCheck(c: Call): Promise<void> {
    await ari.call('DELETE', `/channels/${c.alice}`);
    await ari.call('DELETE', `/channels/${c.callee}`);
    await ari.call('DELETE', `/bridges/${c.bridge}`);
    expect(await exitOf(c.alicePhone, 10_000)).toBe(0);
    expect(await exitOf(c.calleePhone, 10_000)).toBe(0);
    await until('Asterisk to be clean', async () => JSON.stringify(await leftOn()) === JSON.stringify({ channels: [], bridges: [] }), 10_000).catch(() => undefined);
    expect(await leftOn()).toEqual({ channels: [], bridges: [] });
    expect(phones.filter((p) => p.exitCode !== 0).map((p) => p.diagnostics())).toEqual([]);
  }

  beforeAll(async () => {
    asterisk = await startOwnAsterisk(connectedLineOn);
    target = asterisk.target;
  }, 60_000);

  afterAll(async () => {
    await asterisk?.dispose();
  });

  beforeEach(async () => {
    log = new ScenarioLog();
    ari = new AriClient(target.ariUrl, username, password, log);
    events = await ari.connect(app, true);
    // Each test starts with nothing on Asterisk.
    expect(await leftOn()).toEqual({ channels: [], bridges: [] });
    log.steps.length = 0;
    log.step(`ASTERISK SIP ${target.sipPort} ARI ${target.ariUrl}; phones ${JSON.stringify(target.phones)}`);
  });

  afterEach(async (test) => {
    await clean();
    await Promise.all(phones.map((p) => exitOf(p, 5000).catch(() => p.stop())));
    await ari.closeAll();
    if (TRACES) writeTrace(TRACES, test.task.name, log, phones);
    phones = [];
  });

  it('re-INVITE: CONNECTEDLINE(all) set on a phone\'s own channel reaches that phone only, in P-Asserted-Identity and Remote-Party-ID; the call stays up', async () => {
    const c = await call('1003', ALLOW);
    // The join itself (a two-party bridge, no inhibitConnectedLineUpdates):
    // Asterisk gives each channel the other's caller id as connected line.
    // carol's leg was dialled with alice's own caller id, so alice is told
    // she talks to 1001, herself.
    expect(c.atJoin.alice.map((u) => [u.method, u.pai])).toEqual([['INVITE', '<sip:1001@127.0.0.1>']]);
    expect(c.atJoin.callee.map((u) => [u.method, u.pai])).toEqual([['INVITE', '<sip:1001@127.0.0.1>']]);
    const seen = { alice: updatesOf(c.alicePhone).length, carol: updatesOf(c.calleePhone).length };

    // alice's channel: alice's phone is told she talks to Carol <1003>.
    const sinceEvents = events.received.length;
    let sent = await setVariable(c.alice, 'CONNECTEDLINE(all)', '"Carol" <1003>');
    const toAlice = await nextUpdate(c.alicePhone, seen.alice, sent, 'alice\'s phone to get the update');
    note(`CONNECTEDLINE(all)="Carol" <1003> on alice's channel → alice's phone ${show([toAlice])} ${toAlice.after} ms after the REST call was sent`);
    expect(toAlice.method).toBe('INVITE');
    expect(toAlice.sdp).toBe(true);
    expect(toAlice.pai).toMatch(/^"Carol" <sip:1003@127\.0\.0\.1(:\d+)?>$/);
    // party= says Asterisk's role in that dialog: alice called it (it is the called party there), it called carol.
    expect(toAlice.rpid).toMatch(/^"Carol" <sip:1003@127\.0\.0\.1(:\d+)?>;party=called;privacy=off;screen=no$/);
    expect(await variable(c.alice, 'CONNECTEDLINE(all)')).toEqual({ value: '"Carol" <1003>' });
    const connectedEvents = events.received.slice(sinceEvents).filter((e: AriEvent) => e.type === 'ChannelConnectedLine');
    note(`ARI events of that set: ${JSON.stringify(events.received.slice(sinceEvents).map((e) => `${e.type} ${((e.channel as Channel | undefined)?.name) ?? ''}`))}`);
    expect(connectedEvents.map((e) => [channelIdOf(e), (e.channel as Channel).connected])).toEqual([[c.alice, { name: 'Carol', number: '1003' }]]);
    // carol's phone hears nothing of it.
    await expectQuiet(c.calleePhone, seen.carol);

    // carol's channel: carol's phone is told she talks to Alice <1001>.
    sent = await setVariable(c.callee, 'CONNECTEDLINE(all)', '"Alice" <1001>');
    const toCarol = await nextUpdate(c.calleePhone, seen.carol, sent, 'carol\'s phone to get the update');
    note(`CONNECTEDLINE(all)="Alice" <1001> on carol's channel → carol's phone ${show([toCarol])} ${toCarol.after} ms after the REST call was sent`);
    expect(toCarol.method).toBe('INVITE');
    expect(toCarol.pai).toMatch(/^"Alice" <sip:1001@127\.0\.0\.1(:\d+)?>$/);
    expect(toCarol.rpid).toMatch(/^"Alice" <sip:1001@127\.0\.0\.1(:\d+)?>;party=calling;privacy=off;screen=no$/);
    await expectQuiet(c.alicePhone, seen.alice + 1);

    await expectStillUp(c);
    await hangUpAndCheck(c);
  });

  it('UPDATE: a phone whose Allow has UPDATE gets the update as UPDATE without SDP; bridged with inhibitConnectedLineUpdates=true, the join sends nothing', async () => {
    const c = await call('1003', ALLOW_UPDATE, { inhibit: true });
    expect({ alice: show(c.atJoin.alice), carol: show(c.atJoin.callee) }).toEqual({ alice: 'nothing', carol: 'nothing' });

    let sent = await setVariable(c.alice, 'CONNECTEDLINE(all)', '"Carol" <1003>');
    const toAlice = await nextUpdate(c.alicePhone, 0, sent, 'alice\'s phone to get the update');
    note(`Allow with UPDATE: on alice's channel → alice's phone ${show([toAlice])} ${toAlice.after} ms after the REST call was sent`);
    expect([toAlice.method, toAlice.sdp]).toEqual(['UPDATE', false]);
    expect(toAlice.pai).toMatch(/^"Carol" <sip:1003@127\.0\.0\.1(:\d+)?>$/);
    expect(toAlice.rpid).toMatch(/^"Carol" <sip:1003@/);

    sent = await setVariable(c.callee, 'CONNECTEDLINE(all)', '"Alice" <1001>');
    const toCarol = await nextUpdate(c.calleePhone, 0, sent, 'carol\'s phone to get the update');
    note(`Allow with UPDATE: on carol's channel → carol's phone ${show([toCarol])} ${toCarol.after} ms after the REST call was sent`);
    expect([toCarol.method, toCarol.sdp]).toEqual(['UPDATE', false]);
    expect(toCarol.pai).toMatch(/^"Alice" <sip:1001@127\.0\.0\.1(:\d+)?>$/);

    await expectQuiet(c.alicePhone, 1);
    await expectStillUp(c);
    await hangUpAndCheck(c);
  });

  it('the i option sends nothing but keeps the value; the same value again is not resent; name and num set apart send one update each', async () => {
    const c = await call('1003', ALLOW_UPDATE, { inhibit: true });

    // i: stored, not sent.
    await setVariable(c.alice, 'CONNECTEDLINE(all,i)', '"Carol" <1003>');
    await expectQuiet(c.alicePhone, 0);
    expect(await variable(c.alice, 'CONNECTEDLINE(all)')).toEqual({ value: '"Carol" <1003>' });
    note('CONNECTEDLINE(all,i) on alice\'s channel: nothing on the wire; CONNECTEDLINE(all) reads the new value');

    // The same value without i: not yet indicated to the phone, so sent now.
    let sent = await setVariable(c.alice, 'CONNECTEDLINE(all)', '"Carol" <1003>');
    const first = await nextUpdate(c.alicePhone, 0, sent, 'the update once set without i');
    note(`then the same value without i → ${show([first])} ${first.after} ms after`);
    expect(first.pai).toMatch(/^"Carol" <sip:1003@/);

    // Again, identical: Asterisk drops it as redundant.
    await setVariable(c.alice, 'CONNECTEDLINE(all)', '"Carol" <1003>');
    await expectQuiet(c.alicePhone, 1);
    note('the same value again → nothing (redundant update dropped)');

    // name, then num: two updates, the first with the new name and the old number.
    sent = await setVariable(c.alice, 'CONNECTEDLINE(name)', 'Dave');
    const byName = await nextUpdate(c.alicePhone, 1, sent, 'the update of the name');
    sent = await setVariable(c.alice, 'CONNECTEDLINE(num)', '1004');
    const byNumber = await nextUpdate(c.alicePhone, 2, sent, 'the update of the number');
    note(`CONNECTEDLINE(name)=Dave then CONNECTEDLINE(num)=1004 → ${show([byName, byNumber])}`);
    expect(byName.pai).toMatch(/^"Dave" <sip:1003@/);
    expect(byNumber.pai).toMatch(/^"Dave" <sip:1004@/);
    await expectQuiet(c.alicePhone, 3);

    await expectStillUp(c);
    await hangUpAndCheck(c);
  });

  it('send_connected_line=no (1004), and send_pai=send_rpid=no (1002): the phone gets nothing, the call stays up', async () => {
    for (const callee of ['1004', '1002'] as const) {
      const c = await call(callee, ALLOW_UPDATE, { inhibit: true });
      await setVariable(c.callee, 'CONNECTEDLINE(all)', '"Alice" <1001>');
      await expectQuiet(c.calleePhone, 0);
      expect(await variable(c.callee, 'CONNECTEDLINE(all)')).toEqual({ value: '"Alice" <1001>' });
      note(`${callee} (${callee === '1004' ? 'send_connected_line=no' : 'send_pai=no, send_rpid=no'}): CONNECTEDLINE(all) on its channel → nothing in ${QUIET_MS} ms, the value is kept`);
      // alice's own endpoint sends them: her phone still gets hers.
      const toAlice = await nextUpdate(c.alicePhone, 0, await setVariable(c.alice, 'CONNECTEDLINE(all)', `"Callee" <${callee}>`), 'alice\'s update');
      expect(toAlice.pai).toMatch(new RegExp(`^"Callee" <sip:${callee}@`));
      note(`alice's own update still comes: ${show([toAlice])} ${toAlice.after} ms after the REST call`);
      await expectStillUp(c);
      await hangUpAndCheck(c);
    }
  });
});

function writeTrace(dir: string, testName: string, log: ScenarioLog, phones: SippPhone[]): void {
  const names: Record<string, string> = {
    're-INVITE': 'connected-line-reinvite',
    UPDATE: 'connected-line-update',
    'the i option': 'connected-line-options',
    send_connected_line: 'connected-line-off',
  };
  const file = Object.entries(names).find(([start]) => testName.startsWith(start))?.[1] ?? testName.replace(/\W+/g, '-');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${file}.events.jsonl`), log.events.map((l) => `${l}\n`).join(''));
  writeFileSync(join(dir, `${file}.rest.jsonl`), log.rest.map((r) => `${JSON.stringify(r)}\n`).join(''));
  writeFileSync(join(dir, `${file}.steps.txt`), `${log.steps.join('\n')}\n`);
  const count = new Map<string, number>();
  for (const p of phones) {
    const n = (count.get(p.options.phone) ?? 0) + 1;
    count.set(p.options.phone, n);
    writeFileSync(join(dir, `${file}.${p.options.phone}${n > 1 ? `-${n}` : ''}.sipp-messages.txt`), p.trace());
  }
}
