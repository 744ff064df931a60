// What a recording scenario gets to work with: the ARI client and its main
// events socket, phones, RTP counters, Asterisk's CLI and console, and a place
// to note facts. One fresh Asterisk instance per scenario.

import { performance } from 'node:perf_hooks';
import { AriClient, channelIdOf, type AriEvent, type EventSocket, type ScenarioLog } from './ari-log.js';
import { ARI_APP, type AsteriskInstance } from './asterisk.js';
import { Phone, type PhoneSpec } from './phones.js';
import { RtpCounter } from './rtp-counter.js';

export interface Scenario {
  name: string;
  /** One line: what the scenario shows. */
  about: string;
  run(ctx: ScenarioContext): Promise<void>;
}

export class ScenarioContext {
  readonly phones: Phone[] = [];
  readonly rtp: RtpCounter[] = [];
  /** Facts noted by the scenario (also in the steps log). */
  readonly facts: string[] = [];
  main!: EventSocket;

  constructor(
    readonly name: string,
    readonly ari: AriClient,
    readonly log: ScenarioLog,
    readonly asterisk: AsteriskInstance,
    readonly outDir: string,
  ) {}

  async connectMain(): Promise<void> {
    this.main = await this.ari.connect(ARI_APP, true, 'main');
  }

  phone(spec: PhoneSpec): Phone {
    const p = Phone.start(spec, this.name, this.outDir, this.asterisk.base, this.log);
    this.phones.push(p);
    return p;
  }

  async rtpCounter(port: number): Promise<RtpCounter> {
    const c = await RtpCounter.listen(port);
    this.rtp.push(c);
    return c;
  }

  now(): number {
    return performance.now();
  }

  note(fact: string): void {
    this.facts.push(fact);
    this.log.step(`FACT ${fact}`);
  }

  sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
  }

  /** Waits for a main-socket event of `type` on a channel whose name starts with `namePrefix`. */
  waitChannelEvent(type: string, namePrefix: string, since = 0, timeoutMs = 10_000): Promise<AriEvent> {
    return this.main.waitFor(
      (e) => e.type === type && ((e.channel as { name?: string } | undefined)?.name ?? '').startsWith(namePrefix),
      `${type} of ${namePrefix}`,
      timeoutMs,
      since,
    );
  }

  waitEvent(type: string, channelId?: string, since = 0, timeoutMs = 10_000): Promise<AriEvent> {
    return this.main.waitFor(
      (e) => e.type === type && (channelId === undefined || channelIdOf(e) === channelId),
      `${type}${channelId ? ` of ${channelId}` : ''}`,
      timeoutMs,
      since,
    );
  }

  /** A phone's call has entered Stasis: answer it, return its id. */
  async answerInbound(namePrefix: string, since = 0): Promise<string> {
    const start = await this.waitChannelEvent('StasisStart', namePrefix, since);
    const id = channelIdOf(start)!;
    await this.ari.call('POST', `/channels/${id}/answer`);
    return id;
  }

  /** Originates `endpoint` into the app with a chosen id; waits for its StasisStart. */
  async originateAnswered(channelId: string, endpoint: string, extra: Record<string, string | number> = {}): Promise<string> {
    const since = this.main.received.length;
    const r = await this.ari.call('POST', `/channels/${channelId}`, { endpoint, app: ARI_APP, timeout: 20, ...extra });
    if (r.status !== 200) throw new Error(`recorder: originate ${endpoint} -> ${r.status}`);
    await this.waitEvent('StasisStart', channelId, since);
    return channelId;
  }

  /** Hangs up every channel and destroys every bridge still there (end of a scenario). */
  async cleanUp(): Promise<void> {
    const chans = (await this.ari.call('GET', '/channels')).body as { id: string }[] | null;
    for (const c of chans ?? []) await this.ari.call('DELETE', `/channels/${c.id}`);
    const bridges = (await this.ari.call('GET', '/bridges')).body as { id: string }[] | null;
    for (const b of bridges ?? []) await this.ari.call('DELETE', `/bridges/${b.id}`);
  }
}
