// REFER out with the service on the real Asterisk: a carrier's call
// blind-transferred by bob to a number off the platform goes back to the
// carrier as a REFER (ARI redirect); a carrier that refuses gets the
// ordinary blind transfer instead. Facts: test/fixtures/traces/refer-out/.
//
// Asterisk is this file's own (local-asterisk.ts): a copy of asterisk-config
// with the carrier trunk (carrier-trunk.ts) and an endpoint for the number
// 0612345678 whose contact is carol's SIPp port (1003): the fallback leg
// PJSIP/0612345678 rings carol, as a carrier route would ring the number.
//
//   the carrier (SIPp, endpoint "carrier") calls 1002; the service routes it
//   to bob (ROUTING=dial); bob REFERs it to 0612345678.
//
// The service's webhooks go to a real HTTP server on loopback.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { TransferService } from '../../src/service.js';
import { captureLogs } from '../helpers/log-capture.js';
import type { AsteriskTarget } from './asterisk-target.js';
import { addCarrierTrunk, CARRIER } from './carrier-trunk.js';
import { AriProbe, until } from './harness.js';
import type { LocalAsterisk } from './local-asterisk.js';
import { onOwnAsterisk, startOwnAsterisk } from './own-asterisk.js';
import { exitOf, SippPhone, type PhoneOptions } from './phones.js';
import { received, receivedSipfrags } from './sipp-messages.js';

const NUMBER = '0612345678';
const WEBHOOK_SECRET = 'refer-out-test-secret';


/** The carrier trunk, and the number's endpoint at carol's port (the fallback's route). */
function configure(etc: string): void {
  addCarrierTrunk(etc);
  const file = join(etc, 'pjsip.conf');
  const text = readFileSync(file, 'utf8');
  const carol = /^contact = sip:1003@127\.0\.0\.1:(\d+)$/m.exec(text);
  if (!carol) throw new Error(`${file}: no contact for 1003; asterisk-config changed?`);
  writeFileSync(file, `${text}\n[${NUMBER}](phone-endpoint)\naors = ${NUMBER}\n[${NUMBER}](phone-aor)\ncontact = sip:${NUMBER}@127.0.0.1:${carol[1]}\n`);
}

interface Webhook {
  type: string;
  step?: string;
  message?: string;
  result?: string;
  sipfrags?: number[];
}

onOwnAsterisk('REFER out with the service on the real Asterisk', () => {
  let asterisk: LocalAsterisk;
  let t: AsteriskTarget;
  let ari: AriProbe;
  let service: TransferService;
  let hooks: Server;
  const webhooks: Webhook[] = [];
  const logs = captureLogs('info');
  let phones: SippPhone[] = [];
  const explain = () => phones.map((p) => p.diagnostics()).join('\n');

  const phone = (options: Omit<PhoneOptions, 'port'> & { port?: number }) => {
    const p = SippPhone.start({ ...options, port: options.port ?? t.phones[options.phone as '1001'] }, { host: t.sipHost, port: t.sipPort });
    phones.push(p);
    return p;
  };

  /** The carrier calls bob, who REFERs the call to NUMBER; carol plays `carolScenario` if given. */
  async function carrierCall(carrierScenario: string, carolScenario?: string) {
    const carol = carolScenario ? phone({ scenario: carolScenario, phone: '1003' }) : undefined;
    const bob = phone({ scenario: 'uas_blind_referer.xml', phone: '1002', keys: { refer_to: NUMBER, refer_params: '', refer_extra_header: 'X-Scenario: refer-out' } });
    await new Promise((r) => setTimeout(r, 300));
    const carrier = phone({ scenario: carrierScenario, phone: CARRIER, port: t.phones['1004'], call: '1002' });
    return { carrier, bob, carol };
  }

  const refersTo = (p: SippPhone) => received(p.messages(), 'REFER').map((m) => m.headers.get('refer-to'));
  const steps = () => webhooks.filter((w) => w.type === 'transfer.step');

  async function expectNothingLeft(): Promise<void> {
    await until('every channel and bridge to be gone', async () => (await ari.channels()).length === 0 && (await ari.bridges()).length === 0, 10_000, explain).catch(() => undefined);
    expect({ channels: (await ari.channels()).map((c) => c.name), bridges: (await ari.bridges()).map((b) => b.id) }).toEqual({ channels: [], bridges: [] });
    await until('every phone to finish its scenario', () => phones.every((p) => p.done), 10_000, explain);
    expect(phones.filter((p) => p.exitCode !== 0).map((p) => p.diagnostics())).toEqual([]);
  }

  beforeAll(async () => {
    asterisk = await startOwnAsterisk(configure);
    t = asterisk.target;
    ari = new AriProbe(t);
    hooks = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        webhooks.push(JSON.parse(body) as Webhook);
        res.writeHead(204).end();
      });
    });
    hooks.listen(0, '127.0.0.1');
    await once(hooks, 'listening');
    const address = hooks.address();
    const hookUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    service = new TransferService(
      loadConfig({
        ARI_URL: t.ariUrl,
        ARI_USERNAME: t.username,
        ARI_PASSWORD: t.password,
        ARI_APP: t.app,
        ROUTING: 'dial',
        TRANSFER_TIMEOUT: '6',
        TRANSFER_REFER_OUT_ENDPOINTS: CARRIER,
        TRANSFER_REFER_OUT_DESTINATIONS: '0[1-9]\\d{8}',
        TRANSFER_REFER_OUT_TARGET: 'PJSIP/sip:{exten}@carrier.example',
        TRANSFER_EVENT_HOOK: `${hookUrl}/events`,
        TRANSFER_ACTION_HOOK: `${hookUrl}/actions`,
        WEBHOOK_SECRET,
      }),
      logs.logger,
    );
    service.start();
    await until('the service to connect to ARI', () => service.ready, 15_000);
  }, 60_000);

  afterAll(async () => {
    await service?.stop();
    hooks?.close();
    await asterisk?.dispose();
  });

  beforeEach(async () => {
    webhooks.length = 0;
    expect({ channels: await ari.channels(), bridges: await ari.bridges() }).toEqual({ channels: [], bridges: [] });
  });

  afterEach(async () => {
    for (const c of await ari.channels()) await ari.call('DELETE', `/channels/${encodeURIComponent(c.id)}`);
    for (const b of await ari.bridges()) await ari.call('DELETE', `/bridges/${encodeURIComponent(b.id)}`);
    await Promise.all(phones.map((p) => exitOf(p, 5000).catch(() => p.stop())));
    phones = [];
    logs.lines.length = 0;
  });

  it('the carrier takes the call: it gets a REFER to sip:<number>@carrier.example, bob hears 100 then 200, the carrier\'s call leaves Asterisk, nothing is dialled; the webhooks tell it', async () => {
    const { carrier, bob } = await carrierCall('uac_carrier_refer_accept.xml');
    expect(await exitOf(carrier, 30_000)).toBe(0);
    expect(refersTo(carrier)).toEqual([`sip:${NUMBER}@carrier.example`]);
    expect(await exitOf(bob, 15_000)).toBe(0);
    expect(receivedSipfrags(bob.messages())).toEqual([100, 200]);
    // The carrier's call ended with its own BYE (after its NOTIFY 200), not with one from Asterisk.
    expect(received(carrier.messages(), 'BYE')).toEqual([]);
    await expectNothingLeft();
    // Nothing was dialled: no dial step, no channel ever named after the number.
    await until('the transfer to be reported finished', () => webhooks.some((w) => w.type === 'transfer.finished'), 10_000);
    expect(steps().map((w) => w.step)).not.toContain('dial');
    expect(steps().filter((w) => w.step === 'refer-out').map((w) => w.message)).toEqual([
      'call sent back to its carrier: Asterisk REFERs it',
      'the carrier took the call: its call left Asterisk',
    ]);
    expect(webhooks.find((w) => w.type === 'transfer.finished')).toMatchObject({ result: 'completed', sipfrags: [100, 200] });
  });

  it('the carrier refuses (403): the destination is dialled instead; bob hears 100 then 200, the carrier\'s call talks to carol; the webhooks tell both steps', async () => {
    const { carrier, bob, carol } = await carrierCall('uac_carrier_refer_reject.xml', 'uas_answer.xml');
    await until('the carrier to refuse the REFER', () => carrier.messages().some((m) => m.direction === 'sent' && m.status === 403), 15_000, explain);
    expect(refersTo(carrier)).toEqual([`sip:${NUMBER}@carrier.example`]);
    expect(await exitOf(bob, 20_000)).toBe(0);
    expect(receivedSipfrags(bob.messages())).toEqual([100, 200]);
    await until('the carrier and carol to share a bridge', async () => (await ari.bridgedPhones()).length === 1, 10_000, explain);
    expect(await ari.bridgedPhones()).toEqual([[NUMBER, CARRIER]]);
    expect(await ari.channelsOf('1002')).toEqual([]);

    // The carrier's call goes on with carol until Asterisk ends it.
    for (const c of await ari.channels()) if (c.name.startsWith(`PJSIP/${CARRIER}-`)) await ari.call('DELETE', `/channels/${encodeURIComponent(c.id)}`);
    expect(await exitOf(carrier, 10_000)).toBe(0);
    expect(await exitOf(carol!, 10_000)).toBe(0);
    expect(received(carol!.messages(), 'BYE')).toHaveLength(1);
    await expectNothingLeft();
    await until('the transfer to be reported finished', () => webhooks.some((w) => w.type === 'transfer.finished'), 10_000);
    expect(steps().filter((w) => w.step === 'refer-out').map((w) => w.message)).toEqual([
      'call sent back to its carrier: Asterisk REFERs it',
      'the carrier did not take the call: it is back in its bridge',
      'the carrier kept the call: dialling the destination instead',
    ]);
    expect(steps().map((w) => w.step)).toContain('dial');
    expect(webhooks.find((w) => w.type === 'transfer.finished')).toMatchObject({ result: 'completed', sipfrags: [100, 200] });
  });
});
