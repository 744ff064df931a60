// Replaying a recorded scenario against the emulator: the test script plays the
// phones (calls, REFERs, hangups, holds) at the right moments and replays the
// recorded REST calls in order, each sent only once every event recorded before it
// was sent has arrived, with recorded ids translated to the emulator's. At the end
// every socket's events and every REST answer are compared with the recording,
// values included (normalise.ts).

import { expect } from 'vitest';
import { AriEmulator } from '../index.js';
import type { AriEmulatorOptions } from '../types.js';
import { ari, connectEvents, type EventClient, type WireEvent } from '../test-helpers.js';
import { diff, Normaliser, type Json } from './normalise.js';
import { COMPARED, epochMs, label, recordedEvents, recordedRest, type RestEntry, type TraceEvent } from './trace.js';

export interface SocketSpec {
  /** Fixture suffix: undefined for `<trace>.events.jsonl`, else `<trace>.<label>.events.jsonl`. */
  label?: string;
  app: string;
  subscribeAll: boolean;
}

interface ReplaySocket {
  spec: SocketSpec;
  client: EventClient;
  recorded: TraceEvent[];
}

interface RestResult {
  entry: RestEntry;
  status: number;
  body: Json;
}

export interface CompareOptions {
  /** Per socket label ('' = main): from this index on the order of events is not compared (a race in the recording). */
  unorderedFrom?: Record<string, number>;
  /** REST calls whose answers are not compared (by index in rest.jsonl). */
  skipRest?: number[];
}

export class Replay {
  readonly results: RestResult[] = [];
  private readonly ids = new Map<string, string>();
  private cursor = 0;

  private constructor(
    readonly trace: string,
    readonly emu: AriEmulator,
    readonly sockets: ReplaySocket[],
    readonly rest: RestEntry[],
  ) {}

  static async start(trace: string, options: AriEmulatorOptions, sockets: SocketSpec[]): Promise<Replay> {
    const emu = await AriEmulator.start({ orderSeed: null, ...options });
    const list: ReplaySocket[] = [];
    for (const spec of sockets) {
      const client = await connectEvents(emu, { app: spec.app, subscribeAll: spec.subscribeAll });
      list.push({ spec, client, recorded: recordedEvents(trace, spec.label) });
    }
    return new Replay(trace, emu, list, recordedRest(trace));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) await s.client.close();
    await this.emu.close();
  }

  /** The main socket's received events. */
  get events(): WireEvent[] {
    return this.sockets[0]!.client.events;
  }

  /** Replays recorded REST calls up to and including the next one whose `METHOD path?query` matches. */
  async replayTo(match: string | RegExp): Promise<RestResult> {
    const test = (e: RestEntry): boolean => {
      const text = `${e.method} ${e.path}${Object.keys(e.query).length ? `?${new URLSearchParams(Object.entries(e.query).map(([k, v]): [string, string] => [k, String(v)])).toString()}` : ''}`;
      return typeof match === 'string' ? decodeURIComponent(text).startsWith(match) : match.test(decodeURIComponent(text));
    };
    const at = this.rest.findIndex((e, i) => i >= this.cursor && test(e));
    if (at < 0) throw new Error(`replay ${this.trace}: no recorded REST call ${String(match)} after #${this.cursor}`);
    let last!: RestResult;
    while (this.cursor <= at) last = await this.replayNext();
    return last;
  }

  /** Replays every recorded REST call not replayed yet. */
  async replayRest(): Promise<void> {
    while (this.cursor < this.rest.length) await this.replayNext();
  }

  private async replayNext(): Promise<RestResult> {
    const entry = this.rest[this.cursor++]!;
    await this.eventsBefore(epochMs(entry.sent));
    this.learnIds();
    const query: Record<string, string> = {};
    for (const [k, v] of Object.entries(entry.query)) query[k] = String(v).split(',').map((p) => this.ids.get(p) ?? p).join(',');
    const path = entry.path
      .split('/')
      .map((seg) => {
        const raw = decodeURIComponent(seg);
        return encodeURIComponent(this.ids.get(raw) ?? raw);
      })
      .join('/');
    const res = await ari(this.emu, entry.method, path, { query, ...(entry.body !== null ? { body: entry.body } : {}) });
    const body = (res.body ?? null) as Json;
    const recId = (entry.response as { id?: unknown } | null)?.id;
    const emuId = (body as { id?: unknown } | null)?.id;
    if (typeof recId === 'string' && typeof emuId === 'string' && !this.ids.has(recId)) this.ids.set(recId, emuId);
    const result = { entry, status: res.status, body };
    this.results.push(result);
    return result;
  }

  /** Waits until every socket got as many compared events as were recorded before `ms`. */
  private async eventsBefore(ms: number): Promise<void> {
    for (const s of this.sockets) {
      const want = s.recorded.filter((e) => epochMs(e.timestamp) < ms).length;
      await this.waitCount(s, want, `the events recorded before REST #${this.cursor - 1}`);
    }
  }

  private async waitCount(s: ReplaySocket, want: number, what: string, timeoutMs = 8000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (compared(s.client.events).length < want) {
      if (Date.now() > deadline) {
        throw new Error(
          `replay ${this.trace} [${s.spec.label ?? 'main'}]: waiting for ${what}: got ${compared(s.client.events).length} of ${want}\n` +
            sequences(s.recorded.slice(0, want), compared(s.client.events)),
        );
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Recorded id → emulator id, from the events received so far, aligned with the recorded ones. */
  private learnIds(): void {
    for (const s of this.sockets) {
      const got = compared(s.client.events);
      for (let i = 0; i < Math.min(got.length, s.recorded.length); i++) this.learnFrom(s.recorded[i] as Json, got[i] as Json);
    }
  }

  private learnFrom(rec: Json, emu: Json, key = ''): void {
    if (typeof rec === 'string' && typeof emu === 'string') {
      if (key === 'id' && !this.ids.has(rec)) this.ids.set(rec, emu);
      return;
    }
    if (Array.isArray(rec) && Array.isArray(emu)) {
      rec.forEach((r, i) => i < emu.length && this.learnFrom(r, emu[i]!, key === 'channels' ? 'id' : ''));
      return;
    }
    if (rec && emu && typeof rec === 'object' && typeof emu === 'object' && !Array.isArray(rec) && !Array.isArray(emu)) {
      for (const [k, v] of Object.entries(rec)) if (k in emu) this.learnFrom(v, emu[k]!, k);
    }
  }

  /** The emulator id of a channel the recording knows as `recordedId`. */
  id(recordedId: string): string {
    this.learnIds();
    const id = this.ids.get(recordedId);
    if (!id) throw new Error(`replay ${this.trace}: recorded id ${recordedId} not seen yet`);
    return id;
  }

  /** Waits for a main-socket event of `type` matching `match`. */
  waitEvent(type: string, match: (e: WireEvent) => boolean = () => true): Promise<WireEvent> {
    return this.sockets[0]!.client.waitFor(type, match);
  }

  /** Waits until REST hangups are finished (the emulator does them a moment later) and no event arrived for a moment. */
  async quiet(): Promise<void> {
    await this.emu.waitFor(() => this.emu.channels().every((c) => !c.hangupPending), 5000);
    for (const s of this.sockets) await s.client.settle();
  }

  /** Waits until every socket has all its recorded events (and nothing more arrives for a moment). */
  async settle(): Promise<void> {
    for (const s of this.sockets) await this.waitCount(s, s.recorded.length, 'all recorded events');
    for (const s of this.sockets) await s.client.settle();
  }

  /** Everything received and answered equals the recording, values included. */
  compare(opts: CompareOptions = {}): void {
    for (const s of this.sockets) {
      const name = s.spec.label ?? '';
      const got = canonicalRinging(compared(s.client.events));
      const recorded = canonicalRinging(s.recorded);
      const cut = opts.unorderedFrom?.[name] ?? recorded.length;
      const recLabels = recorded.map(label);
      const gotLabels = got.map(label);
      expect(ordered(gotLabels, cut), `event sequence on socket ${name || 'main'}`).toEqual(ordered(recLabels, cut));
      const rn = new Normaliser();
      const en = new Normaliser();
      const rec = recorded.map((e) => rn.normalise(e as Json));
      const emu = got.map((e) => en.normalise(e as Json));
      const problems = [...rn.problems.map((p) => `recorded ${p}`), ...en.problems.map((p) => `emulator ${p}`)];
      for (let i = 0; i < cut; i++) problems.push(...diff(rec[i]!, emu[i]!, `[${name || 'main'}] #${i} ${recLabels[i]}`));
      problems.push(...unorderedDiff(rec.slice(cut), emu.slice(cut), name));
      expect(problems.filter((p) => !NATIVE_RTP_REEVALUATION.test(p)), `event values on socket ${name || 'main'}`).toEqual([]);
    }
    // REST answers: statuses always; bodies normalised, except /asterisk/info (a different server).
    const rn = new Normaliser();
    const en = new Normaliser();
    const problems: string[] = [];
    this.results.forEach((r, i) => {
      const what = `REST #${i} ${r.entry.method} ${r.entry.path}`;
      if (r.status !== r.entry.status) problems.push(`${what}: recorded ${r.entry.status}, emulator ${r.status} ${JSON.stringify(r.body)}`);
      if (opts.skipRest?.includes(i) || r.entry.path === '/asterisk/info') return;
      problems.push(...diff(rn.normalise(r.entry.response), en.normalise(r.body), what));
    });
    expect(problems, 'REST answers').toEqual([]);
    expect(this.cursor, 'every recorded REST call replayed').toBe(this.rest.length);
  }
}

/**
 * A two-party bridge of PJSIP channels is native_rtp, but Asterisk re-evaluates it now and
 * then (recorded after a REFER, after transfer_progress, while a member leaves: the
 * snapshot reads simple_bridge for a while, differently from run to run and between
 * versions). The emulator keeps native_rtp; that one difference is accepted, every other
 * technology value must match.
 */
const NATIVE_RTP_REEVALUATION = /\.technology: recorded "simple_bridge", emulator "native_rtp"$/;

function compared(events: WireEvent[]): WireEvent[] {
  return events.filter((e) => COMPARED.has(e.type));
}

/**
 * A race in Asterisk: on a 180, chan_pjsip sets the channel Ringing on its own thread while
 * the dial thread publishes Dial RINGING; the recordings show both orders (Dial first with
 * the snapshot still Down, or ChannelStateChange first). Both are put in the latter form.
 */
export function canonicalRinging<T extends { type: string; [k: string]: unknown }>(events: T[]): T[] {
  const out = events.map((e) => ({ ...e }));
  for (let i = 0; i + 1 < out.length; i++) {
    const dial = out[i]!;
    const next = out[i + 1]!;
    const peer = dial.peer as { id?: string; state?: string } | undefined;
    const ch = next.channel as { id?: string; state?: string } | undefined;
    if (
      dial.type === 'Dial' &&
      dial.dialstatus === 'RINGING' &&
      next.type === 'ChannelStateChange' &&
      ch?.state === 'Ringing' &&
      peer?.id === ch.id
    ) {
      out[i] = next;
      out[i + 1] = { ...dial, peer: { ...peer, state: 'Ringing' } };
    }
  }
  return out;
}

function ordered(labels: string[], cut: number): string[] {
  return [...labels.slice(0, cut), ...labels.slice(cut).sort()];
}

function unorderedDiff(rec: Json[], emu: Json[], name: string): string[] {
  const key = (j: Json) => JSON.stringify(j);
  const r = [...rec].sort((a, b) => key(a).localeCompare(key(b)));
  const e = [...emu].sort((a, b) => key(a).localeCompare(key(b)));
  return r.flatMap((x, i) => diff(x, e[i] ?? null, `[${name || 'main'}] unordered tail #${i}`));
}

function sequences(rec: TraceEvent[], got: WireEvent[]): string {
  return `recorded: ${rec.map(label).join(' | ')}\nemulator: ${got.map(label).join(' | ')}`;
}
