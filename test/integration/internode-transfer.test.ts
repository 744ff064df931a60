// An attended transfer across two real Asterisk nodes, through the service:
// one instance per node (ASTERISK_NODE a and b) sharing a real redis-server.
//
//   alice (1001) ── a ── bob (1002, first call)      bob's phone REFERs on
//   bob (1002, consultation) ── b ── carol (1003)    his first call (node a),
//                                                    Replaces naming the
//   after:  alice ── a ══ trunk ══ b ── carol        consultation (node b)
//
// Node a's service finds the dialog on node b in the shared registry, leaves
// b's instance a join request, and calls node b over the trunk; b's
// instance puts that call in carol's bridge, answers it and hangs bob's
// consultation leg up; a joins the answered call to alice and tells bob 200.
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { AriProbe, until } from './harness.js';
import { nodeServiceEnv, onTwoNodes, startNodes, type Node, type Nodes } from './nodes.js';
import { exitOf, SippPhone } from './phones.js';
import { ServiceProcess } from './service-process.js';
import { RtpListener } from './rtp-listener.js';
import { receivedSipfrags } from './sipp-messages.js';
import { RedisServer } from '../helpers/redis-server.js';

const listening = () => new Promise((r) => setTimeout(r, 300));

onTwoNodes('attended transfers across two Asterisk nodes (two services, one Redis)', () => {
  let nodes: Nodes;
  let redis: RedisServer;
  let services: ServiceProcess[] = [];
  let phones: SippPhone[] = [];
  let ears: RtpListener[] = [];
  const probe = (node: Node) => new AriProbe(node.target);
  const explain = () => [...phones.map((p) => p.diagnostics()), ...services.map((s) => s.tail(40))].join('\n');

  beforeAll(async () => {
    [nodes, redis] = await Promise.all([startNodes(), RedisServer.start()]);
  }, 60_000);
  afterAll(async () => {
    await nodes?.dispose();
    await redis?.stop();
  });

  beforeEach(async () => {
    if (!nodes.b.asterisk.running) await nodes.b.asterisk.restart();
    for (const node of [nodes.a, nodes.b]) {
      const ari = probe(node);
      expect({ channels: await ari.channels(), bridges: await ari.bridges() }).toEqual({ channels: [], bridges: [] });
    }
    services = [startService(nodes.a), startService(nodes.b)];
    for (const s of services) await until('the service to be ready', () => s.ready(), 20_000, explain);
  });

  afterEach(async () => {
    await Promise.all(phones.map((p) => exitOf(p, 5000).catch(() => p.stop())));
    phones = [];
    await Promise.all(ears.map((e) => e.close()));
    ears = [];
    for (const s of services) await s.kill();
    for (const node of [nodes.a, nodes.b]) if (node.asterisk.running) await probe(node).hangUpEverything();
  });

  function startService(node: Node): ServiceProcess {
    // carol's extension lives on node b: a blind transfer to it from a is dialled there.
    return ServiceProcess.start(nodeServiceEnv(node, redis.url, { TRANSFER_NODE_ROUTES: 'b=1003' }));
  }

  function phone(node: Node, options: Omit<Parameters<typeof SippPhone.start>[0], 'port'> & { port: number }): SippPhone {
    const p = SippPhone.start(options, { host: '127.0.0.1', port: node.target.sipPort });
    phones.push(p);
    return p;
  }

  /**
   * alice calls bob on node a; bob's second call reaches carol on node b;
   * `consultMs` after she answers, bob REFERs alice to it. alice's and
   * carol's RTP go to the test's ears.
   */
  async function callsOnTwoNodes(consultMs = 2000) {
    const { a, b } = nodes;
    const threePcc = `127.0.0.1:${a.target.phones.threePcc}`;
    const aliceEar = await RtpListener.open();
    const carolEar = await RtpListener.open();
    ears.push(aliceEar, carolEar);
    const carol = phone(b, { scenario: 'uas_ring_answer.xml', phone: '1003', port: b.target.phones['1003'], keys: { ring_ms: '200', answer: '200', rtp_port: String(carolEar.port) } });
    const bobConsult = phone(b, {
      scenario: 'uac_att_consult.xml',
      phone: '1002',
      port: b.target.phones.consult,
      call: '1003',
      keys: { consult_ms: String(consultMs) },
      threePcc,
    });
    await listening();
    const bobFirst = phone(a, { scenario: 'uas_att_referer.xml', phone: '1002', port: a.target.phones['1002'], keys: { refer_target: '1003' }, threePcc });
    await listening();
    const alice = phone(a, { scenario: 'uac_call_rtp.xml', phone: '1001', port: a.target.phones['1001'], call: '1002', keys: { rtp_port: String(aliceEar.port) } });
    return { alice, bobFirst, bobConsult, carol, aliceEar, carolEar };
  }

  /** Music on hold played into `node`'s one bridge for 1.5 s: whether `ear` got sound meanwhile (50 packets a second, some of them loud). */
  async function heardMusicFrom(node: Node, ear: RtpListener): Promise<boolean> {
    const ari = probe(node);
    const [bridge] = await ari.bridges();
    await ari.call('POST', `/bridges/${encodeURIComponent(bridge!.id)}/moh`);
    const heard = await ear.listen(1500);
    await ari.call('DELETE', `/bridges/${encodeURIComponent(bridge!.id)}/moh`);
    return heard.packets >= 50 && heard.sound >= 10;
  }

  /** Each node's bridges, as the names of their channels' endpoints. */
  async function bridgedEndpoints(node: Node): Promise<string[][]> {
    const ari = probe(node);
    const channels = new Map((await ari.channels()).map((c) => [c.id, c.name.replace(/^PJSIP\/(.*)-[0-9a-f]+$/, '$1')]));
    return (await ari.bridges()).map((br) => br.channels.map((id) => channels.get(id) ?? id).sort());
  }

  it('bob hears 100 then 200; alice on node a talks to carol on node b through the trunk (music crosses both ways); both of bob\'s calls are gone on both nodes', async () => {
    const { alice, bobFirst, bobConsult, carol, aliceEar, carolEar } = await callsOnTwoNodes();
    expect(await exitOf(bobFirst, 30_000)).toBe(0);
    expect(receivedSipfrags(bobFirst.messages())).toEqual([100, 200]);
    expect(await exitOf(bobConsult, 10_000)).toBe(0);
    await until(
      'alice bridged with the trunk on a, carol with the trunk on b',
      async () => JSON.stringify([await bridgedEndpoints(nodes.a), await bridgedEndpoints(nodes.b)]) === JSON.stringify([[['1001', 'node-b']], [['1003', 'node-a']]]),
      10_000,
      explain,
    );
    expect(services[0]!.messages()).toContain('attended transfer planned across nodes: a call to the other node joins the transferees to its target');
    expect(services[1]!.messages()).toContain('joined the call from node a; hanging up the replaced leg');
    // The SIPp phones send no audio: music played into one node's bridge must reach the other node's phone.
    expect({ alice: await heardMusicFrom(nodes.b, aliceEar), carol: await heardMusicFrom(nodes.a, carolEar) }).toEqual({ alice: true, carol: true });

    // alice hangs up: the trunk call ends on both nodes, carol gets her BYE.
    for (const c of await probe(nodes.a).channelsOf('1001')) await probe(nodes.a).call('DELETE', `/channels/${encodeURIComponent(c.id)}`);
    expect(await exitOf(alice, 10_000)).toBe(0);
    expect(await exitOf(carol, 10_000)).toBe(0);
    for (const node of [nodes.a, nodes.b]) {
      const ari = probe(node);
      await until(`nothing left on node ${node.name}`, async () => (await ari.channels()).length === 0 && (await ari.bridges()).length === 0, 10_000, explain);
    }
  });

  it('blind, the destination on node b (TRANSFER_NODE_ROUTES): bob hears 100 then 200; alice on node a talks to carol on node b through the trunk', async () => {
    const { a, b } = nodes;
    const carol = phone(b, { scenario: 'uas_answer.xml', phone: '1003', port: b.target.phones['1003'] });
    const bob = phone(a, {
      scenario: 'uas_blind_referer.xml',
      phone: '1002',
      port: a.target.phones['1002'],
      keys: { refer_to: '1003', refer_params: '', refer_extra_header: 'X-Scenario: internode' },
    });
    await listening();
    const alice = phone(a, { scenario: 'uac_call_wait_bye.xml', phone: '1001', port: a.target.phones['1001'], call: '1002' });
    expect(await exitOf(bob, 30_000)).toBe(0);
    expect(receivedSipfrags(bob.messages())).toEqual([100, 200]);
    await until(
      'alice bridged with the trunk on a, carol with it on b',
      async () => JSON.stringify([await bridgedEndpoints(a), await bridgedEndpoints(b)]) === JSON.stringify([[['1001', 'node-b']], [['1003', 'node-a']]]),
      10_000,
      explain,
    );
    expect(services[0]!.messages()).toContain('blind transfer: dialling the destination on node b');
    for (const c of await probe(a).channelsOf('1001')) await probe(a).call('DELETE', `/channels/${encodeURIComponent(c.id)}`);
    expect(await exitOf(alice, 10_000)).toBe(0);
    expect(await exitOf(carol, 10_000)).toBe(0);
    for (const node of [a, b]) {
      const ari = probe(node);
      await until(`nothing left on node ${node.name}`, async () => (await ari.channels()).length === 0 && (await ari.bridges()).length === 0, 10_000, explain);
    }
  });

  it('node b killed (SIGKILL) after the consultation call is up, before the REFER: the call to b fails, bob hears 100 then 503, alice is not connected anywhere else', async () => {
    const { a, b } = nodes;
    const { bobFirst } = await callsOnTwoNodes(4000);
    // The consultation call up on b, and published for a's look-up: then b goes (its entries outlive it by REDIS_TTL).
    await until('bob and carol bridged on node b', async () => JSON.stringify(await bridgedEndpoints(b)) === JSON.stringify([['1002', '1003']]), 15_000, explain);
    await until('the consultation call published', async () => (await redis.keys()).some((k) => k === 'ari-transfer:node:b:callids'), 5_000, explain);
    process.kill(Number(readFileSync(b.asterisk.env.ASTERISK_PID_FILE!, 'utf8').trim()), 'SIGKILL');
    await until('node b to be gone', () => !b.asterisk.running, 5_000, explain);

    expect(await exitOf(bobFirst, 30_000)).toBe(0);
    expect(receivedSipfrags(bobFirst.messages())).toEqual([100, 503]);
    const transfers = (await (await fetch(`${services[0]!.apiUrl}/transfers`)).json()) as { finished: { kind: string; result: string; sipfrags: number[] }[] };
    expect(transfers.finished.map((t) => ({ kind: t.kind, result: t.result, sipfrags: t.sipfrags }))).toEqual([{ kind: 'attended', result: 'failed', sipfrags: [100, 503] }]);
    // bob hung up after his 503 (his phone's scenario): the routed call ends, nothing is left on a.
    await until('nothing left on node a', async () => (await probe(a).channels()).length === 0 && (await probe(a).bridges()).length === 0, 10_000, explain);
  });
});
