// What every integration scenario shares: the Asterisk under test (from the
// environment the runner sets), its ARI state as seen from outside, the SIPp
// phones of asterisk-config's test profile, the service under test, and the
// clean-up that leaves a clean Asterisk for the next test.
import { spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { TransferService } from '../../src/service.js';
import { captureLogs, type CapturedLogs } from '../helpers/log-capture.js';
import { DEFAULT_PHONE_PORTS, targetFromEnv, type AsteriskTarget } from './asterisk-target.js';
import { exitOf, SippPhone, type PhoneOptions } from './phones.js';
import { absorbStraySip } from './stray-sip.js';

export const target = targetFromEnv();
/** `describe`, or `describe.skip` when the runner found no Asterisk. */
export const onAsterisk = target ? describe : describe.skip;

export interface AriChannel {
  id: string;
  name: string;
  state: string;
}
export interface AriBridge {
  id: string;
  technology: string;
  channels: string[];
}

type Phone = '1001' | '1002' | '1003' | '1004';

/** ARI as a test sees it: plain REST calls, independent of the service's client. */
export class AriProbe {
  constructor(private readonly t: AsteriskTarget) {}

  async call<T>(method: string, path: string, okStatuses = [200, 204, 404]): Promise<T> {
    const res = await fetch(`${this.t.ariUrl}/ari${path}`, {
      method,
      headers: { authorization: `Basic ${Buffer.from(`${this.t.username}:${this.t.password}`).toString('base64')}` },
    });
    if (!okStatuses.includes(res.status)) throw new Error(`${method} ${path} → ${res.status} ${await res.text()}`);
    return (res.status === 200 ? await res.json() : undefined) as T;
  }

  channels = () => this.call<AriChannel[]>('GET', '/channels');
  bridges = () => this.call<AriBridge[]>('GET', '/bridges');

  /** The channels of one phone (PJSIP/1001-...). */
  async channelsOf(ext: Phone): Promise<AriChannel[]> {
    return (await this.channels()).filter((c) => c.name.startsWith(`PJSIP/${ext}-`));
  }

  /** Who shares a bridge with whom, as sorted lists of phones: [['1001','1003']]. */
  async bridgedPhones(): Promise<string[][]> {
    const [channels, bridges] = await Promise.all([this.channels(), this.bridges()]);
    const nameOf = new Map(channels.map((c) => [c.id, c.name]));
    return bridges
      .map((b) => b.channels.map((id) => /^PJSIP\/(\w+)-/.exec(nameOf.get(id) ?? '')?.[1] ?? nameOf.get(id) ?? id).sort())
      .sort((a, b) => a.join().localeCompare(b.join()));
  }

  async hangUpEverything(): Promise<void> {
    for (const c of await this.channels()) await this.call('DELETE', `/channels/${encodeURIComponent(c.id)}`);
    for (const b of await this.bridges()) await this.call('DELETE', `/bridges/${encodeURIComponent(b.id)}`);
  }
}

export async function until(what: string, check: () => Promise<boolean> | boolean, ms = 15_000, explain: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${explain()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface ScenarioContext {
  t: AsteriskTarget;
  ari: AriProbe;
  logs: CapturedLogs;
  service(): TransferService;
  /**
   * Starts a SIPp phone of the test profile; it is stopped after the test.
   * `port`: 'consult' for 1002's consultation call, or a free port of the
   * test's choosing for a second calling phone with the same From user.
   */
  phone(options: Omit<PhoneOptions, 'port' | 'threePcc'> & { port?: 'consult' | number; threePcc?: boolean }): SippPhone;
  /** Why a wait failed: the phones' own accounts. */
  explain(): string;
  /** Hangs up a phone's channels through ARI, as if it had sent BYE itself. */
  hangUp(ext: Phone): Promise<void>;
  /** The test's last assertion: no channel and no bridge left on Asterisk, every phone done. */
  expectNothingLeft(): Promise<void>;
}

export interface ScenarioOptions {
  /**
   * false: the suite starts no service of its own, and its tests run one
   * themselves (as a process, behind a proxy...); ctx.service() is then
   * undefined. Only one client can hold the Stasis application at a time.
   */
  service?: boolean;
}

/**
 * Declares a suite of scenarios on the real Asterisk, with one service
 * (configured by `env` on top of the integration defaults) for the suite.
 */
export function scenarios(name: string, env: Record<string, string>, body: (ctx: ScenarioContext) => void, options: ScenarioOptions = {}): void {
  const ownService = options.service ?? true;
  onAsterisk(name, () => {
    // Without a target the suite is skipped, but its tests are still declared.
    const t = target ?? ({ phones: DEFAULT_PHONE_PORTS } as AsteriskTarget);
    const ari = new AriProbe(t);
    const logs = captureLogs('info');
    let service: TransferService | undefined;
    let phones: SippPhone[] = [];
    /** Set by expectNothingLeft: every scenario must end by checking it left Asterisk clean. */
    let checkedClean = false;
    const explain = () => phones.map((p) => p.diagnostics()).join('\n');

    const ctx: ScenarioContext = {
      t,
      ari,
      logs,
      service: () => service as TransferService,
      phone: (options) => {
        const port = typeof options.port === 'number' ? options.port : options.port === 'consult' ? t.phones.consult : t.phones[options.phone as Phone];
        const p = SippPhone.start(
          { ...options, port, threePcc: options.threePcc ? `127.0.0.1:${t.phones.threePcc}` : undefined },
          { host: t.sipHost, port: t.sipPort },
        );
        phones.push(p);
        return p;
      },
      explain,
      hangUp: async (ext) => {
        for (const c of await ari.channelsOf(ext)) await ari.call('DELETE', `/channels/${encodeURIComponent(c.id)}`);
      },
      expectNothingLeft: async () => {
        checkedClean = true;
        await until('every channel and bridge to be gone', async () => (await ari.channels()).length === 0 && (await ari.bridges()).length === 0, 10_000, explain).catch(
          () => undefined,
        );
        expect({ channels: (await ari.channels()).map((c) => c.name), bridges: (await ari.bridges()).map((b) => b.id) }).toEqual({ channels: [], bridges: [] });
        await until('every phone to finish its scenario', () => phones.every((p) => p.done), 10_000, explain);
        expect(phones.filter((p) => p.exitCode !== 0).map((p) => p.diagnostics())).toEqual([]);
      },
    };

    beforeAll(async () => {
      if (!ownService) return;
      service = new TransferService(
        loadConfig({ ARI_URL: t.ariUrl, ARI_USERNAME: t.username, ARI_PASSWORD: t.password, ARI_APP: t.app, ROUTING: 'dial', ...env }),
        logs.logger,
      );
      service.start();
      await until('the service to connect to ARI', () => service!.ready, 15_000);
    });

    afterEach(async (test) => {
      const passedUnchecked = !checkedClean && test.task.result?.state !== 'fail';
      checkedClean = false;
      // Hang up while the phones still run, so each BYE is answered; a phone
      // killed mid-call would get Asterisk's BYE retransmissions for 32 s,
      // and the next phone on its port would take them as its call.
      await ari.hangUpEverything();
      await Promise.all(phones.map((p) => exitOf(p, 5000).catch(() => p.stop())));
      const killed = phones.filter((p) => p.killed).map((p) => p.port);
      phones = [];
      if (killed.length > 0) await Promise.all(killed.map((port) => absorbStraySip(port, 4000)));
      await until('Asterisk to be clean for the next test', async () => (await ari.channels()).length === 0 && (await ari.bridges()).length === 0, 10_000);
      if (ownService) await until('the service to be back in sync', () => service!.ready, 15_000);
      logs.lines.length = 0;
      if (passedUnchecked) throw new Error('this scenario never checked that it left nothing behind: end it with ctx.expectNothingLeft()');
    });

    afterAll(async () => {
      await service?.stop();
    });

    body(ctx);
  });
}

/** Runs an Asterisk CLI command on the instance under test (only when the runner started it). */
/**
 * The end every completed transfer to carol shares: alice (1001) and carol
 * (1003) talk in one bridge; alice hangs up, carol gets her BYE, both
 * phones finish, and nothing is left on Asterisk.
 */
export async function aliceTalksToCarolUntilSheHangsUp(ctx: ScenarioContext, alice: SippPhone, carol: SippPhone, explain = ctx.explain): Promise<void> {
  await until('alice and carol to share a bridge', async () => (await ctx.ari.bridgedPhones()).length === 1, 10_000, explain);
  expect(await ctx.ari.bridgedPhones()).toEqual([['1001', '1003']]);
  await ctx.hangUp('1001');
  expect(await exitOf(alice, 10_000)).toBe(0);
  expect(await exitOf(carol, 10_000)).toBe(0);
  await ctx.expectNothingLeft();
}

export function asteriskCli(t: AsteriskTarget, command: string): string {
  if (!t.cli) throw new Error('this Asterisk was not started by the suite: no CLI access');
  const [binary, ...args] = t.cli;
  const out = spawnSync(binary!, [...args, '-rx', command], { encoding: 'utf8', timeout: 10_000 });
  return `${out.stdout}${out.stderr}`;
}
