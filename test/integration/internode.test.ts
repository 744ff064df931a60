// Calls between two Asterisk nodes over the trunk of
// asterisk-config/pjsip-internode.conf.sample, on two real Asterisks
// (nodes.ts), with raw ARI and no service: the groundwork of joining a
// phone of node a with a phone of node b.
//
//   alice (1001) → a: bridge [alice, trunk leg "PJSIP/node-b-…"]
//                       ⇅ SIP trunk, RTP
//   b: bridge [trunk leg "PJSIP/node-a-…", carol (1003)] ← originated by b
//
// INTERNODE_TRACES=<dir> also writes each test's ARI exchanges there in the
// recorder's format (test/fixtures/traces/internode/ was recorded so):
// <name>.{a,b}.events.jsonl, <name>.{a,b}.rest.jsonl, <name>.steps.txt.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { AriClient, channelIdOf, ScenarioLog, type AriEvent, type EventSocket } from '../recorder/ari-log.js';
import { CONFIG_DEFAULTS } from './asterisk-target.js';
import { until } from './harness.js';
import { onTwoNodes, startNodes, type Node, type Nodes } from './nodes.js';
import { exitOf, SippPhone } from './phones.js';
import { RtpListener } from './rtp-listener.js';

const { app, username, password } = CONFIG_DEFAULTS;
const TRACES = process.env.INTERNODE_TRACES;

/** One node as a test drives it: its ARI client and events socket (subscribeAll). */
interface Side {
  node: Node;
  ari: AriClient;
  events: EventSocket;
}

interface Channel {
  id: string;
  name: string;
  state: string;
  caller: { name: string; number: string };
  dialplan: { context: string; exten: string };
}

/** The joined call: alice's channel and the trunk leg on a, the trunk leg and carol's channel on b, a bridge on each. */
interface JoinedCall {
  alice: string;
  aTrunk: string;
  aBridge: string;
  bTrunk: string;
  carol: string;
  bBridge: string;
  aliceEar: RtpListener;
  carolEar: RtpListener;
}

onTwoNodes('calls between two Asterisk nodes over the inter-node trunk (raw ARI, no service)', () => {
  let nodes: Nodes;
  let log: ScenarioLog;
  let a: Side;
  let b: Side;
  let phones: SippPhone[] = [];
  let ears: RtpListener[] = [];

  const note = (fact: string) => log.step(`FACT ${fact}`);
  const explain = () => `${phones.map((p) => p.diagnostics()).join('\n')}\n--- steps ---\n${log.steps.slice(-60).join('\n')}`;
  const wait = (side: Side, what: string, match: (e: AriEvent) => boolean, since = 0, ms = 10_000) => side.events.waitFor(match, `${what} on ${side.node.name}`, ms, since);
  const isEvent = (type: string, channelId?: string) => (e: AriEvent) => e.type === type && (channelId === undefined || channelIdOf(e) === channelId);
  const up = (side: Side) => side.node.asterisk.running;

  async function side(node: Node): Promise<Side> {
    const ari = new AriClient(node.target.ariUrl, username, password, log, node.name);
    return { node, ari, events: await ari.connect(app, true, node.name) };
  }

  async function channels(s: Side): Promise<Channel[]> {
    return ((await s.ari.call('GET', '/channels')).body ?? []) as Channel[];
  }

  async function leftOn(s: Side): Promise<{ channels: string[]; bridges: string[] }> {
    const bridges = ((await s.ari.call('GET', '/bridges')).body ?? []) as { id: string }[];
    return { channels: (await channels(s)).map((c) => c.name), bridges: bridges.map((br) => br.id) };
  }

  async function clean(s: Side): Promise<void> {
    for (const c of await channels(s)) await s.ari.call('DELETE', `/channels/${encodeURIComponent(c.id)}`);
    for (const br of ((await s.ari.call('GET', '/bridges')).body ?? []) as { id: string }[]) await s.ari.call('DELETE', `/bridges/${encodeURIComponent(br.id)}`);
  }

  /** The test's last assertion: nothing left on either node, every phone done and successful. */
  async function expectNothingLeft(): Promise<void> {
    const empty = { channels: [], bridges: [] };
    await until('both nodes to be clean', async () => JSON.stringify([await leftOn(a), await leftOn(b)]) === JSON.stringify([empty, empty]), 10_000).catch(() => undefined);
    expect({ a: await leftOn(a), b: await leftOn(b) }).toEqual({ a: empty, b: empty });
    await until('every phone to finish', () => phones.every((p) => p.done), 10_000, explain);
    expect(phones.filter((p) => p.exitCode !== 0).map((p) => p.diagnostics())).toEqual([]);
  }

  function contactStatus(node: Node): string {
    const [binary, ...args] = node.target.cli!;
    const out = spawnSync(binary!, [...args, '-rx', 'pjsip show contacts'], { encoding: 'utf8', timeout: 10_000 }).stdout;
    return /node-[ab]\/sip:\S+\s+\S+\s+(\w+)/.exec(out)?.[1] ?? `? ${out}`;
  }

  beforeAll(async () => {
    nodes = await startNodes();
  }, 60_000);

  afterAll(async () => {
    await nodes?.dispose();
  });

  beforeEach(async () => {
    log = new ScenarioLog();
    if (!nodes.b.asterisk.running) await nodes.b.asterisk.restart();
    a = await side(nodes.a);
    b = await side(nodes.b);
    // Each test starts with the trunk known reachable both ways (a qualify answered).
    await until('the trunk to be reachable from both nodes', () => contactStatus(nodes.a) === 'Avail' && contactStatus(nodes.b) === 'Avail', 15_000);
    // ...and with nothing on either node.
    expect({ a: await leftOn(a), b: await leftOn(b) }).toEqual({ a: { channels: [], bridges: [] }, b: { channels: [], bridges: [] } });
    log.steps.length = 0;
    log.step(`NODES a: SIP ${nodes.a.target.sipPort} ARI ${nodes.a.target.ariUrl}; b: SIP ${nodes.b.target.sipPort} ARI ${nodes.b.target.ariUrl}`);
  });

  afterEach(async (test) => {
    for (const s of [a, b]) if (up(s)) await clean(s);
    await Promise.all(phones.map((p) => exitOf(p, 5000).catch(() => p.stop())));
    phones = [];
    await Promise.all(ears.map((e) => e.close()));
    ears = [];
    await a.ari.closeAll();
    await b.ari.closeAll();
    if (TRACES) writeTrace(TRACES, test.task.name, log);
  });

  /** alice (1001) calls a; a answers her and puts her in a bridge. */
  async function aliceOnA(): Promise<{ alice: string; aBridge: string; aliceEar: RtpListener }> {
    const aliceEar = await RtpListener.open();
    ears.push(aliceEar);
    phones.push(
      SippPhone.start(
        { scenario: 'uac_call_rtp.xml', phone: '1001', port: nodes.a.target.phones['1001'], call: '1003', keys: { rtp_port: String(aliceEar.port) } },
        { host: '127.0.0.1', port: nodes.a.target.sipPort },
      ),
    );
    const aliceStart = await wait(a, 'alice in Stasis', isEvent('StasisStart'));
    const alice = channelIdOf(aliceStart)!;
    await a.ari.call('POST', `/channels/${alice}/answer`);
    const aBridge = ((await a.ari.call('POST', '/bridges', { type: 'mixing' })).body as { id: string }).id;
    await a.ari.call('POST', `/bridges/${aBridge}/addChannel`, { channel: alice });
    return { alice, aBridge, aliceEar };
  }

  /** a originates the trunk leg to node-b with X-Transfer-Id; it enters b's Stasis app, which reads the header and rings it back. */
  async function trunkLegToB(transferId: string): Promise<{ aTrunk: string; bTrunk: string }> {
    const sinceB = b.events.received.length;
    const sinceA = a.events.received.length;
    const started = Date.now();
    const originate = await a.ari.call(
      'POST',
      '/channels',
      { endpoint: `PJSIP/1003@${nodes.a.trunk}`, app, appArgs: `internode-out,${transferId}`, callerId: '"Alice" <1001>', timeout: 20 },
      { variables: { 'PJSIP_HEADER(add,X-Transfer-Id)': transferId } },
    );
    expect(originate.status, explain()).toBe(200);
    const aTrunk = (originate.body as Channel).id;
    expect((originate.body as Channel).name).toMatch(/^PJSIP\/node-b-/);

    // b: the trunk leg enters b's Stasis application, through [from-internode],
    // identified as the trunk (not as b's own phone 1001, the From user).
    const trunkStart = await wait(b, 'the trunk leg in Stasis', isEvent('StasisStart'), sinceB);
    note(`b StasisStart of the trunk leg ${Date.now() - started} ms after a's originate was sent`);
    const bTrunkChannel = trunkStart.channel as Channel;
    const bTrunk = bTrunkChannel.id;
    expect(trunkStart.args).toEqual(['internode']);
    expect(bTrunkChannel.name).toMatch(/^PJSIP\/node-a-/);
    expect(bTrunkChannel.state).toBe('Ring');
    expect(bTrunkChannel.dialplan).toMatchObject({ context: 'from-internode', exten: '1003' });
    expect(bTrunkChannel.caller).toEqual({ name: 'Alice', number: '1001' });
    const header = await b.ari.call('GET', `/channels/${bTrunk}/variable`, { variable: 'PJSIP_HEADER(read,X-Transfer-Id)' });
    expect(header).toEqual({ status: 200, body: { value: transferId } });
    const callIds = await Promise.all([
      a.ari.call('GET', `/channels/${aTrunk}/variable`, { variable: 'CHANNEL(pjsip,call-id)' }),
      b.ari.call('GET', `/channels/${bTrunk}/variable`, { variable: 'CHANNEL(pjsip,call-id)' }),
    ]);
    note(`the trunk call's SIP Call-ID on a and on b: ${JSON.stringify(callIds.map((r) => r.body))}`);
    expect(callIds[0]!.body).toEqual(callIds[1]!.body);

    // b rings its leg: a's leg says Ringing (180 over the trunk).
    await b.ari.call('POST', `/channels/${bTrunk}/ring`);
    await wait(a, 'the trunk leg\'s Dial RINGING', (e) => isEvent('Dial', aTrunk)(e) && e.dialstatus === 'RINGING', sinceA);
    await wait(a, 'the trunk leg Ringing', (e) => isEvent('ChannelStateChange', aTrunk)(e) && (e.channel as Channel).state === 'Ringing', sinceA);
    return { aTrunk, bTrunk };
  }

  /**
   * alice (1001) calls a, a bridges her with a trunk leg it originates to
   * node-b carrying X-Transfer-Id; b takes the trunk leg, dials carol
   * (1003), bridges both and answers the trunk leg only then; a bridges the
   * answered trunk leg with alice.
   */
  async function joinAliceAndCarol(transferId: string): Promise<JoinedCall> {
    const carolEar = await RtpListener.open();
    ears.push(carolEar);
    phones.push(
      SippPhone.start(
        { scenario: 'uas_ring_answer.xml', phone: '1003', port: nodes.b.target.phones['1003'], keys: { ring_ms: '200', answer: '200', rtp_port: String(carolEar.port) } },
        { host: '127.0.0.1', port: nodes.b.target.sipPort },
      ),
    );
    await new Promise((r) => setTimeout(r, 300));
    const { alice, aBridge, aliceEar } = await aliceOnA();
    const { aTrunk, bTrunk } = await trunkLegToB(transferId);

    // b: carol dialled, answered; one bridge with the trunk leg; the trunk leg answered last.
    const sinceCarol = b.events.received.length;
    const carolCall = await b.ari.call('POST', '/channels', { endpoint: 'PJSIP/1003', app, appArgs: 'internode-target', callerId: '"Alice" <1001>', timeout: 20 });
    expect(carolCall.status).toBe(200);
    const carol = (carolCall.body as Channel).id;
    await wait(b, 'carol answered', (e) => isEvent('StasisStart')(e) && channelIdOf(e) !== bTrunk, sinceCarol);
    const bBridge = ((await b.ari.call('POST', '/bridges', { type: 'mixing' })).body as { id: string }).id;
    await b.ari.call('POST', `/bridges/${bBridge}/addChannel`, { channel: `${bTrunk},${carol}` });
    const sinceA = a.events.received.length;
    const answered = Date.now();
    await b.ari.call('POST', `/channels/${bTrunk}/answer`);

    // a: the trunk leg is answered and enters a's Stasis application only now.
    await wait(a, 'the trunk leg answered', isEvent('StasisStart', aTrunk), sinceA);
    note(`a StasisStart of the trunk leg ${Date.now() - answered} ms after b's answer was sent`);
    const aEvents = a.events.received.slice(sinceA).filter((e) => channelIdOf(e) === aTrunk);
    expect(aEvents.find(isEvent('ChannelStateChange'))?.channel).toMatchObject({ state: 'Up' });
    expect(aEvents.find(isEvent('Dial'))).toMatchObject({ dialstatus: 'ANSWER' });
    expect((aEvents.find(isEvent('StasisStart')) as AriEvent).args).toEqual(['internode-out', transferId]);
    await a.ari.call('POST', `/bridges/${aBridge}/addChannel`, { channel: aTrunk });

    // Both trunk legs Up, each in its node's bridge with the local phone.
    await until('both bridges to hold their two channels', async () => (await bridgeOf(a, aBridge)).length === 2 && (await bridgeOf(b, bBridge)).length === 2, 5000, explain);
    expect(await bridgeOf(a, aBridge)).toEqual([alice, aTrunk].sort());
    expect(await bridgeOf(b, bBridge)).toEqual([bTrunk, carol].sort());
    expect([await stateOf(a, aTrunk), await stateOf(b, bTrunk)]).toEqual(['Up', 'Up']);
    return { alice, aTrunk, aBridge, bTrunk, carol, bBridge, aliceEar, carolEar };
  }

  const bridgeOf = async (s: Side, id: string) => ((await s.ari.call('GET', `/bridges/${id}`)).body as { channels: string[] }).channels.sort();
  const stateOf = async (s: Side, id: string) => ((await s.ari.call('GET', `/channels/${id}`)).body as Channel).state;

  /** The channel's ChannelHangupRequest (if any) and ChannelDestroyed, as seen on `s`. */
  async function endOf(s: Side, id: string, since: number, ms = 10_000): Promise<{ request?: AriEvent; destroyed: AriEvent }> {
    const destroyed = await wait(s, `${id} destroyed`, isEvent('ChannelDestroyed', id), since, ms);
    const request = s.events.received.slice(since).find(isEvent('ChannelHangupRequest', id));
    return { request, destroyed };
  }

  it('a call originated on a over the trunk enters b\'s Stasis app with its header; bridged on both sides, audio crosses both ways; a hangs up, b\'s leg ends', async () => {
    const call = await joinAliceAndCarol('xfer-answered');

    // The SIPp phones send no audio: nothing crosses the trunk yet.
    const silence = await call.carolEar.listen(500);
    // Audio a → b: music on hold played by a to its trunk leg reaches carol's phone on b.
    await a.ari.call('POST', `/channels/${call.aTrunk}/moh`);
    const carolHeard = await call.carolEar.listen(1500);
    await a.ari.call('DELETE', `/channels/${call.aTrunk}/moh`);
    // Audio b → a: music played by b to its trunk leg reaches alice's phone on a.
    await b.ari.call('POST', `/channels/${call.bTrunk}/moh`);
    const aliceHeard = await call.aliceEar.listen(1500);
    await b.ari.call('DELETE', `/channels/${call.bTrunk}/moh`);
    note(`RTP heard: carol (b) before any MOH in 0.5 s ${JSON.stringify(silence)}; in 1.5 s, carol ${JSON.stringify(carolHeard)} from a's MOH, alice (a) ${JSON.stringify(aliceHeard)} from b's MOH`);
    // 50 packets a second once the music plays, some of them sound (the music has quiet parts).
    for (const heard of [carolHeard, aliceHeard]) {
      expect(heard.packets).toBeGreaterThanOrEqual(50);
      expect(heard.sound).toBeGreaterThanOrEqual(10);
    }

    // a hangs up its trunk leg: b's leg ends (BYE over the trunk).
    const sinceB = b.events.received.length;
    const sinceA = a.events.received.length;
    const hungUp = Date.now();
    await a.ari.call('DELETE', `/channels/${call.aTrunk}`);
    const onB = await endOf(b, call.bTrunk, sinceB);
    const onA = await endOf(a, call.aTrunk, sinceA);
    note(`a DELETE trunk leg → a: ChannelDestroyed cause ${String(onA.destroyed.cause)} ${String(onA.destroyed.cause_txt)}; b: HangupRequest cause ${String(onB.request?.cause)}, ChannelDestroyed cause ${String(onB.destroyed.cause)} ${String(onB.destroyed.cause_txt)}, ${Date.now() - hungUp} ms`);
    expect(onB.destroyed.cause).toBe(16);
    // Each node's app then ends its own side.
    await b.ari.call('DELETE', `/channels/${call.carol}`);
    await b.ari.call('DELETE', `/bridges/${call.bBridge}`);
    await a.ari.call('DELETE', `/channels/${call.alice}`);
    await a.ari.call('DELETE', `/bridges/${call.aBridge}`);
    await expectNothingLeft();
  });

  it('b hangs up its trunk leg: a\'s leg ends', async () => {
    const call = await joinAliceAndCarol('xfer-b-hangs-up');
    const sinceA = a.events.received.length;
    const sinceB = b.events.received.length;
    const hungUp = Date.now();
    await b.ari.call('DELETE', `/channels/${call.bTrunk}`);
    const onA = await endOf(a, call.aTrunk, sinceA);
    const onB = await endOf(b, call.bTrunk, sinceB);
    note(`b DELETE trunk leg → b: ChannelDestroyed cause ${String(onB.destroyed.cause)} ${String(onB.destroyed.cause_txt)}; a: HangupRequest cause ${String(onA.request?.cause)}, ChannelDestroyed cause ${String(onA.destroyed.cause)} ${String(onA.destroyed.cause_txt)}, ${Date.now() - hungUp} ms`);
    expect(onA.destroyed.cause).toBe(16);
    // a's bridge keeps alice alone: a's app ends her call.
    expect(((await a.ari.call('GET', `/bridges/${call.aBridge}`)).body as { channels: string[] }).channels).toEqual([call.alice]);
    await a.ari.call('DELETE', `/channels/${call.alice}`);
    await a.ari.call('DELETE', `/bridges/${call.aBridge}`);
    await b.ari.call('DELETE', `/channels/${call.carol}`);
    await b.ari.call('DELETE', `/bridges/${call.bBridge}`);
    await expectNothingLeft();
  });

  it('node b stops (core stop now) during a joined call: a\'s trunk leg ends', async () => {
    const call = await joinAliceAndCarol('xfer-b-stops');
    const sinceA = a.events.received.length;
    const stopped = Date.now();
    await nodes.b.asterisk.stop();
    log.step('b stopped (core stop now)');
    const onA = await endOf(a, call.aTrunk, sinceA, 15_000);
    note(`b stopped with a call up → a: HangupRequest cause ${String(onA.request?.cause)}, ChannelDestroyed cause ${String(onA.destroyed.cause)} ${String(onA.destroyed.cause_txt)}, ${Date.now() - stopped} ms after the stop began`);
    expect(onA.destroyed.cause).toBeDefined();
    await a.ari.call('DELETE', `/channels/${call.alice}`);
    await a.ari.call('DELETE', `/bridges/${call.aBridge}`);
    // carol's phone got b's BYE; b is down, so only a can be checked.
    await until('carol\'s phone to finish', () => phones.every((p) => p.done || p.options.phone === '1001'), 10_000, explain);
    expect(await leftOn(a)).toEqual({ channels: [], bridges: [] });
    await nodes.b.asterisk.restart();
    await until('the trunk to be reachable again', () => contactStatus(nodes.a) === 'Avail', 15_000);
    await expectNothingLeft();
  });

  it('b ends the trunk leg before answering (reason=busy): a\'s leg ends with that cause', async () => {
    const { alice, aBridge } = await aliceOnA();
    const { aTrunk, bTrunk } = await trunkLegToB('xfer-b-rejects');
    const sinceA = a.events.received.length;
    await b.ari.call('DELETE', `/channels/${bTrunk}`, { reason: 'busy' });
    const onA = await endOf(a, aTrunk, sinceA);
    const dials = a.events.received.slice(sinceA).filter(isEvent('Dial', aTrunk)).map((e) => e.dialstatus);
    note(`b DELETE ?reason=busy before answering → a: HangupRequest cause ${String(onA.request?.cause)}, Dial ${JSON.stringify(dials)}, ChannelDestroyed cause ${String(onA.destroyed.cause)} ${String(onA.destroyed.cause_txt)}`);
    expect([onA.request?.cause, dials, onA.destroyed.cause]).toEqual([17, ['BUSY'], 17]);
    await a.ari.call('DELETE', `/channels/${alice}`);
    await a.ari.call('DELETE', `/bridges/${aBridge}`);
    await expectNothingLeft();
  });

  it('no application on b (its service is not connected): a\'s originate ends at once, cause 21', async () => {
    await b.events.close();
    await until('b to forget the application', async () => (await b.ari.call('GET', `/applications/${app}`)).status === 404, 5000);
    const since = a.events.received.length;
    const sent = Date.now();
    const originate = await a.ari.call('POST', '/channels', { endpoint: `PJSIP/1003@${nodes.a.trunk}`, app, appArgs: 'internode-out,xfer-no-app', timeout: 20 });
    expect(originate.status).toBe(200);
    const id = (originate.body as Channel).id;
    const onA = await endOf(a, id, since);
    const dials = a.events.received.slice(since).filter(isEvent('Dial', id)).map((e) => e.dialstatus);
    note(`no app on b → a: HangupRequest cause ${String(onA.request?.cause)}, Dial ${JSON.stringify(dials)}, ChannelDestroyed cause ${String(onA.destroyed.cause)} ${String(onA.destroyed.cause_txt)}, ${Date.now() - sent} ms after the originate was sent`);
    expect([onA.request?.cause, dials, onA.destroyed.cause]).toEqual([21, ['', 'NOANSWER'], 21]);
    expect(Date.now() - sent).toBeLessThan(2000);
    await expectNothingLeft();
  });

  it('node b killed (SIGKILL) during a joined call: a\'s trunk leg stays Up, also once qualify says b is Unreachable', async () => {
    const call = await joinAliceAndCarol('xfer-b-killed');
    const carolPhone = phones.find((p) => p.options.phone === '1003')!;
    const sinceA = a.events.received.length;
    process.kill(Number(readFileSync(nodes.b.asterisk.env.ASTERISK_PID_FILE!, 'utf8').trim()), 'SIGKILL');
    const killed = Date.now();
    log.step('b killed (SIGKILL)');
    await wait(a, 'the trunk contact Unreachable', (e) => e.type === 'ContactStatusChange' && (e.contact_info as { contact_status?: string }).contact_status === 'Unreachable', sinceA, 10_000);
    const unreachableAfter = Date.now() - killed;
    await new Promise((r) => setTimeout(r, 1000));
    note(`b killed: ContactStatusChange Unreachable on a after ${unreachableAfter} ms; ${Date.now() - killed} ms after the kill a's trunk leg is ${await stateOf(a, call.aTrunk)}, events on it since: ${JSON.stringify(a.events.received.slice(sinceA).filter((e) => channelIdOf(e) === call.aTrunk).map((e) => e.type))}`);
    expect(await stateOf(a, call.aTrunk)).toBe('Up');
    expect(await bridgeOf(a, call.aBridge)).toEqual([call.alice, call.aTrunk].sort());
    // a's app has to end it. carol's phone never hears from b again: stopped here.
    carolPhone.stop();
    phones = phones.filter((p) => p !== carolPhone);
    await a.ari.call('DELETE', `/channels/${call.aTrunk}`);
    await a.ari.call('DELETE', `/channels/${call.alice}`);
    await a.ari.call('DELETE', `/bridges/${call.aBridge}`);
    await nodes.b.asterisk.restart();
    await expectNothingLeft();
  });

  it('node b down: a\'s originate fails after its timeout while the trunk still looks reachable, and at once once qualify marks it Unreachable', async () => {
    await nodes.b.asterisk.stop();
    const stopped = Date.now();
    log.step('b stopped (core stop now)');

    // Right after b went down, qualify has not noticed: the INVITE goes out and nobody answers.
    const since = a.events.received.length;
    let sent = Date.now();
    const early = await a.ari.call(
      'POST',
      '/channels',
      { endpoint: `PJSIP/1003@${nodes.a.trunk}`, app, appArgs: 'internode-out,xfer-b-down', timeout: 4 },
      { variables: { 'PJSIP_HEADER(add,X-Transfer-Id)': 'xfer-b-down' } },
    );
    note(`originate with b down ${sent - stopped} ms, contact ${contactStatus(nodes.a)}: ${early.status} ${JSON.stringify(early.body).slice(0, 80)}, answered in ${Date.now() - sent} ms`);
    expect(early.status).toBe(200);
    const id = (early.body as Channel).id;
    const destroyed = await wait(a, 'the unanswered trunk leg destroyed', isEvent('ChannelDestroyed', id), since, 10_000);
    const took = Date.now() - sent;
    note(`ChannelDestroyed cause ${String(destroyed.cause)} ${String(destroyed.cause_txt)} after ${took} ms (originate timeout 4 s); events: ${a.events.received.slice(since).filter((e) => channelIdOf(e) === id).map((e) => (e.type === 'Dial' ? `Dial(${String(e.dialstatus)})` : e.type)).join(', ')}`);
    expect(destroyed.cause).toBe(19);
    expect(took).toBeGreaterThanOrEqual(3500);
    expect(took).toBeLessThan(6000);

    // Within qualify_frequency + qualify_timeout (5 + 2 s) a marks the contact Unreachable...
    const unreachable = await wait(a, 'the trunk contact Unreachable', (e) => e.type === 'ContactStatusChange' && (e.contact_info as { contact_status?: string })?.contact_status === 'Unreachable', 0, 10_000);
    note(`ContactStatusChange Unreachable ${Date.now() - stopped} ms after the stop: ${JSON.stringify(unreachable.contact_info)}`);
    // ...and from then on the originate fails at once.
    sent = Date.now();
    const late = await a.ari.call('POST', '/channels', { endpoint: `PJSIP/1003@${nodes.a.trunk}`, app, appArgs: 'internode-out,xfer-b-down', timeout: 4 });
    note(`originate with the contact ${contactStatus(nodes.a)}: ${late.status} ${JSON.stringify(late.body)} in ${Date.now() - sent} ms`);
    expect(late).toEqual({ status: 500, body: { error: 'Allocation failed' } });
    expect(Date.now() - sent).toBeLessThan(1000);

    // b back: the trunk is reachable again after the next qualify.
    const since2 = a.events.received.length;
    const restarted = Date.now();
    await nodes.b.asterisk.restart();
    const reachable = await wait(a, 'the trunk contact Reachable', (e) => e.type === 'ContactStatusChange' && (e.contact_info as { contact_status?: string })?.contact_status === 'Reachable', since2, 15_000);
    note(`b restarted: ContactStatusChange Reachable on a ${Date.now() - restarted} ms after the restart began: ${JSON.stringify(reachable.contact_info)}`);
    await expectNothingLeft();
  });
});

function writeTrace(dir: string, testName: string, log: ScenarioLog): void {
  const name = {
    'a call': 'internode-answered',
    'b hangs': 'internode-b-hangs-up',
    'node b stops': 'internode-b-stops',
    'node b down': 'internode-b-down',
    'b ends': 'internode-b-rejects',
    'no application': 'internode-no-app',
    'node b killed': 'internode-b-killed',
  };
  const file = Object.entries(name).find(([start]) => testName.startsWith(start))?.[1] ?? testName.replace(/\W+/g, '-');
  mkdirSync(dir, { recursive: true });
  for (const label of ['a', 'b']) {
    writeFileSync(join(dir, `${file}.${label}.events.jsonl`), (log.otherEvents.get(label) ?? []).map((l) => `${l}\n`).join(''));
    writeFileSync(join(dir, `${file}.${label}.rest.jsonl`), (log.labelledRest.get(label) ?? []).map((r) => `${JSON.stringify(r)}\n`).join(''));
  }
  writeFileSync(join(dir, `${file}.steps.txt`), `${log.steps.join('\n')}\n`);
}
