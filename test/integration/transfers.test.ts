// The transfer scenarios of the emulator suites, played by SIPp phones
// against a real Asterisk running asterisk-config/ and the real service.
// Run through `npm run test:integration`, which finds the Asterisk.
//
// Phones (asterisk-config test profile): 1001 alice on 5061, 1002 bob on
// 5062 (5072 for his consultation call), 1003 carol on 5063.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { TransferService } from '../../src/service.js';
import { captureLogs } from '../helpers/log-capture.js';
import { targetFromEnv, type AsteriskTarget } from './asterisk-target.js';
import { exitOf, SippPhone, type SipTarget } from './phones.js';
import { received, receivedSipfrags } from './sipp-messages.js';

const target = targetFromEnv();
const suite = target ? describe : describe.skip;

interface AriChannel {
  id: string;
  name: string;
}
interface AriBridge {
  id: string;
  channels: string[];
}

suite('transfers on a real Asterisk', () => {
  const t = target as AsteriskTarget;
  const sip: SipTarget = { host: t?.sipHost, port: t?.sipPort };
  const logs = captureLogs('info');
  let service: TransferService;
  let phones: SippPhone[] = [];

  const ari = async <T>(method: string, path: string): Promise<T> => {
    const res = await fetch(`${t.ariUrl}/ari${path}`, {
      method,
      headers: { authorization: `Basic ${Buffer.from(`${t.username}:${t.password}`).toString('base64')}` },
    });
    if (!res.ok && res.status !== 404) throw new Error(`${method} ${path} → ${res.status} ${await res.text()}`);
    return (res.status === 200 ? await res.json() : undefined) as T;
  };
  const channelOf = async (ext: string) => (await ari<AriChannel[]>('GET', '/channels')).filter((c) => c.name.startsWith(`PJSIP/${ext}-`));
  /** The bridge holding exactly these phones' channels, if any. */
  const bridgeOf = async (...exts: string[]) => {
    const [channels, bridges] = await Promise.all([ari<AriChannel[]>('GET', '/channels'), ari<AriBridge[]>('GET', '/bridges')]);
    const nameOf = new Map(channels.map((c) => [c.id, c.name]));
    return bridges.find((b) => {
      const members = b.channels.map((id) => /^PJSIP\/(\w+)-/.exec(nameOf.get(id) ?? '')?.[1]).sort();
      return members.join() === [...exts].sort().join();
    });
  };
  const until = async (what: string, check: () => Promise<boolean>, ms = 15_000) => {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${phones.map((p) => p.diagnostics()).join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const phone = (options: Parameters<typeof SippPhone.start>[0]) => {
    const p = SippPhone.start(options, sip);
    phones.push(p);
    return p;
  };
  const listening = () => new Promise((r) => setTimeout(r, 500));

  beforeAll(async () => {
    const config = loadConfig({
      ARI_URL: t.ariUrl,
      ARI_USERNAME: t.username,
      ARI_PASSWORD: t.password,
      ARI_APP: t.app,
      ROUTING: 'dial',
      TRANSFER_TIMEOUT: '4',
    });
    service = new TransferService(config, logs.logger);
    service.start();
    await until('the service to connect to ARI', async () => service.ready);
  });

  afterEach(async () => {
    for (const p of phones) p.stop();
    phones = [];
    // Leave nothing for the next scenario: a stray BYE would be taken by the
    // next phone on that port as its one call (sipp-phones/README).
    for (const c of await ari<AriChannel[]>('GET', '/channels')) await ari('DELETE', `/channels/${encodeURIComponent(c.id)}`);
    for (const b of await ari<AriBridge[]>('GET', '/bridges')) await ari('DELETE', `/bridges/${encodeURIComponent(b.id)}`);
    await new Promise((r) => setTimeout(r, 1500));
  });

  afterAll(async () => {
    await service?.stop();
  });

  /** alice (1001) calls bob (1002), who plays `bobScenario`; carol (1003) plays `carolScenario`. */
  async function blindCall(carolScenario: string) {
    const carol = phone({ scenario: carolScenario, phone: '1003', port: 5063 });
    const bob = phone({
      scenario: 'uas_blind_referer.xml',
      phone: '1002',
      port: 5062,
      keys: { refer_to: '1003', refer_params: '', refer_extra_header: 'X-Scenario: blind' },
    });
    await listening();
    const alice = phone({ scenario: 'uac_call_wait_bye.xml', phone: '1001', port: 5061, call: '1002' });
    return { alice, bob, carol };
  }

  it('blind transfer, answered: bob hears 100 then 200, alice talks to carol, nothing left after they hang up', async () => {
    const { alice, bob, carol } = await blindCall('uas_answer.xml');
    expect(await exitOf(bob, 30_000)).toBe(0);
    expect(receivedSipfrags(bob.messages())).toEqual([100, 200]);
    await until('alice and carol to share a bridge', async () => (await bridgeOf('1001', '1003')) !== undefined);
    expect(await channelOf('1002')).toEqual([]);

    const [aliceChannel] = await channelOf('1001');
    await ari('DELETE', `/channels/${encodeURIComponent(aliceChannel!.id)}`);
    expect(await exitOf(alice, 10_000)).toBe(0);
    expect(await exitOf(carol, 10_000)).toBe(0);
    expect(received(carol.messages(), 'BYE')).toHaveLength(1);
    await until('no channel and no bridge left', async () => (await ari<unknown[]>('GET', '/channels')).length === 0 && (await ari<unknown[]>('GET', '/bridges')).length === 0);
  });

  it('blind transfer to a busy phone: bob hears 100 then 603, alice is back with bob', async () => {
    const { bob, carol } = await blindCall('uas_busy.xml');
    expect(await exitOf(carol, 30_000)).toBe(0);
    await until('bob to hear the final NOTIFY', async () => receivedSipfrags(bob.messages()).length === 2);
    expect(receivedSipfrags(bob.messages())).toEqual([100, 603]);
    expect(await bridgeOf('1001', '1002')).toBeDefined();
    expect(await channelOf('1003')).toEqual([]);
  });

  it('blind transfer nobody answers within TRANSFER_TIMEOUT: 100 then 503, carol gets CANCEL, alice back with bob', async () => {
    const { bob, carol } = await blindCall('uas_ring_forever.xml');
    expect(await exitOf(carol, 30_000)).toBe(0);
    expect(received(carol.messages(), 'CANCEL')).toHaveLength(1);
    await until('bob to hear the final NOTIFY', async () => receivedSipfrags(bob.messages()).length === 2);
    expect(receivedSipfrags(bob.messages())).toEqual([100, 503]);
    expect(await bridgeOf('1001', '1002')).toBeDefined();
  });

  it('attended transfer: bob hears 100 then 200, alice talks to carol, both of bob calls are gone', async () => {
    const carol = phone({ scenario: 'uas_answer.xml', phone: '1003', port: 5063 });
    // Side B (the consultation call) listens on the 3PCC socket: start it first.
    const bobConsult = phone({ scenario: 'uac_att_consult.xml', phone: '1002', port: 5072, call: '1003', threePcc: '127.0.0.1:5099' });
    await listening();
    const bobFirst = phone({ scenario: 'uas_att_referer.xml', phone: '1002', port: 5062, keys: { refer_target: '1003' }, threePcc: '127.0.0.1:5099' });
    await listening();
    phone({ scenario: 'uac_call_wait_bye.xml', phone: '1001', port: 5061, call: '1002' });

    expect(await exitOf(bobFirst, 30_000)).toBe(0);
    expect(receivedSipfrags(bobFirst.messages())).toEqual([100, 200]);
    expect(await exitOf(bobConsult, 10_000)).toBe(0);
    expect(received(bobConsult.messages(), 'BYE')).toHaveLength(1);
    await until('alice and carol to share a bridge', async () => (await bridgeOf('1001', '1003')) !== undefined);
    expect(await channelOf('1002')).toEqual([]);
    expect(carol.messages().some((m) => m.method === 'INVITE')).toBe(true);
    expect(logs.lines.some((l) => l.msg === 'transfer completed')).toBe(true);
  });
});
