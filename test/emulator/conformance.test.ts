// Conformance of the emulator with a real Asterisk: the scenarios of the recorded
// traces are replayed against the emulator over real HTTP and WebSocket, and the
// events it sends are compared with the recorded ones (test/fixtures/recorded-events):
// same sequence of event types, same keys in the same order, same JSON types
// recursively, and equal values wherever the value is not an identity or a clock.

import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { AriEmulator } from './index.js';
import { INTERESTING, ari, connectEvents, type EventClient, type WireEvent } from './test-helpers.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function recorded(scenario: string): WireEvent[] {
  const url = new URL(`../fixtures/recorded-events/${scenario}.json`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')) as WireEvent[];
}

/** Values that legitimately differ between two runs (identities, clocks, tags) or race in Asterisk. */
const IGNORED_VALUES = new Set([
  'id',
  'name',
  'protocol_id',
  'timestamp',
  'creationtime',
  'asterisk_id',
  'technology',
  'parameter_value',
  'channels',
  'caller',
  'connected',
]);

function kind(v: Json): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Differences between a recorded and an emulated JSON value; empty when they conform. */
function diff(rec: Json, emu: Json, path = '$', ignoreValue = false): string[] {
  const out: string[] = [];
  if (kind(rec) !== kind(emu)) return [`${path}: recorded ${kind(rec)}, emulator ${kind(emu)}`];
  if (Array.isArray(rec) && Array.isArray(emu)) {
    if (rec.length !== emu.length) out.push(`${path}: recorded ${rec.length} items, emulator ${emu.length}`);
    for (let i = 0; i < Math.min(rec.length, emu.length); i++) {
      out.push(...diff(rec[i] as Json, emu[i] as Json, `${path}[${i}]`, ignoreValue));
    }
    return out;
  }
  if (kind(rec) === 'object') {
    const r = rec as Record<string, Json>;
    const e = emu as Record<string, Json>;
    const rk = Object.keys(r);
    const ek = Object.keys(e);
    if (rk.join(',') !== ek.join(',')) out.push(`${path}: keys recorded [${rk.join(',')}], emulator [${ek.join(',')}]`);
    for (const k of rk) {
      if (k in e) out.push(...diff(r[k] as Json, e[k] as Json, `${path}.${k}`, ignoreValue || IGNORED_VALUES.has(k)));
    }
    return out;
  }
  if (!ignoreValue && rec !== emu) out.push(`${path}: recorded ${JSON.stringify(rec)}, emulator ${JSON.stringify(emu)}`);
  return out;
}

function interesting(events: WireEvent[]): WireEvent[] {
  return events.filter((e) => INTERESTING.has(e.type));
}

/** "Type channel-or-bridge" labels, to show sequence differences readably. */
function label(e: WireEvent): string {
  const ch = (e.channel as { name?: string } | undefined)?.name?.replace(/-[0-9a-f]{8}$/, '');
  const br = (e.bridge as { name?: string } | undefined)?.name;
  const extra = e.type === 'ChannelTransfer' ? String(e.state ?? '(no state)') : (ch ?? br ?? '');
  return `${e.type} ${extra}`.trim();
}

function compareAll(rec: WireEvent[], emu: WireEvent[]): void {
  expect(emu.map(label)).toEqual(rec.map(label));
  const problems = rec.flatMap((r, i) => diff(r as Json, emu[i] as Json, `#${i} ${r.type}`));
  expect(problems).toEqual([]);
}

let emu: AriEmulator;
let events: EventClient;

afterEach(async () => {
  await events?.close();
  await emu?.close();
});

/** The traces' setup: app transfer-app, systemname ari-harness, context from-phones. */
async function start(): Promise<void> {
  emu = await AriEmulator.start({ app: 'transfer-app', systemName: 'ari-harness' });
  events = await connectEvents(emu, { app: 'transfer-app', subscribeAll: true });
}

async function inbound(endpoint: string, exten: string, callerName: string, callId?: string): Promise<string> {
  const ch = emu.phoneCalls({ endpoint, exten, callerName, args: ['inbound', exten, endpoint], ...(callId ? { callId } : {}) });
  await events.waitFor('StasisStart', (e) => (e.channel as { id: string }).id === ch.id);
  expect((await ari(emu, 'GET', `/channels/${ch.id}/variable`, { query: { variable: 'CHANNEL(pjsip,call-id)' } })).status).toBe(200);
  expect((await ari(emu, 'POST', `/channels/${ch.id}/answer`)).status).toBe(204);
  return ch.id;
}

async function originate(endpoint: string, appArgs: string, callerId: string): Promise<string> {
  const since = events.events.length;
  const res = await ari(emu, 'POST', '/channels', {
    query: { endpoint, app: 'transfer-app', appArgs, callerId, timeout: 20 },
  });
  expect(res.status).toBe(200);
  const id = (res.body as { id: string }).id;
  await events.waitFor('StasisStart', (e) => (e.channel as { id: string }).id === id, since);
  return id;
}

const add = async (bridge: string, channel: string) =>
  expect((await ari(emu, 'POST', `/bridges/${bridge}/addChannel`, { query: { channel } })).status).toBe(204);
const remove = async (bridge: string, channel: string) =>
  expect((await ari(emu, 'POST', `/bridges/${bridge}/removeChannel`, { query: { channel } })).status).toBe(204);
const hangup = async (channel: string) =>
  expect((await ari(emu, 'DELETE', `/channels/${channel}`, { query: { reason: 'normal' } })).status).toBe(204);
const progress = async (channel: string, states: string) =>
  expect((await ari(emu, 'POST', `/channels/${channel}/transfer_progress`, { query: { states } })).status).toBe(204);
const bridge = async (id: string, name: string) =>
  expect((await ari(emu, 'POST', `/bridges/${id}`, { query: { type: 'mixing', name } })).status).toBe(200);
const destroy = async (id: string) => expect((await ari(emu, 'DELETE', `/bridges/${id}`)).status).toBe(204);

describe('conformance with the recorded traces', () => {
  it('attended: the same events, in the same order and shape (attended.events.jsonl)', async () => {
    await start();
    // Steps exactly as attended.timeline.txt / attended.rest.jsonl.
    const alice = await inbound('alice', '100', 'Alice');
    await bridge('att-bridge-1', 'original-call');
    await add('att-bridge-1', alice);
    const bob1 = await inbound('bob', '200', 'Bob');
    await add('att-bridge-1', bob1);
    const bob2 = await inbound('bob', '1002', 'Bob', `REMOTE${emu.dialogOf(bob1).callId}`);
    await bridge('att-bridge-2', 'consult-call');
    await add('att-bridge-2', bob2);
    const carol = await originate('PJSIP/carol', 'consult-target,carol', 'Bob <bob>');
    await add('att-bridge-2', carol);

    const d = emu.dialogOf(bob2);
    const refer = emu.sendRefer(bob1, {
      kind: 'attended',
      destination: '1002',
      replaces: { callId: d.callId, fromTag: d.remoteTag, toTag: d.localTag },
    });
    await events.waitFor('ChannelTransfer');
    await progress(bob1, 'channel_progress');
    await remove('att-bridge-1', alice);
    await add('att-bridge-2', alice);
    await remove('att-bridge-2', bob2);
    await hangup(bob2);
    await progress(bob1, 'channel_answered');
    emu.phoneHangsUp(bob1);
    await destroy('att-bridge-1');
    expect((await ari(emu, 'GET', '/bridges/att-bridge-2')).status).toBe(200);
    await hangup(alice);
    await hangup(carol);
    await destroy('att-bridge-2');
    await events.settle();

    expect(refer.sipfrags).toEqual([100, 200]);
    compareAll(recorded('attended'), interesting(events.events));
  });

  it('blind-answered: blind ChannelTransfer, progress and answered echoes (blind-answered.events.jsonl)', async () => {
    await start();
    const alice = await inbound('alice', '100', 'Alice');
    await bridge('blind-answered-bridge', 'call-bridge');
    await add('blind-answered-bridge', alice);
    const bob = await originate('PJSIP/bob', 'outbound,bob', 'Alice <alice>');
    await add('blind-answered-bridge', bob);

    const refer = emu.sendRefer(bob, { kind: 'blind', destination: '1002' });
    await events.waitFor('ChannelTransfer');
    await progress(bob, 'channel_progress');
    const carol = await originate('PJSIP/carol', 'transfer-target,carol', 'Alice <alice>');
    await add('blind-answered-bridge', carol);
    await remove('blind-answered-bridge', bob);
    await progress(bob, 'channel_answered');
    await hangup(bob);
    await hangup(alice);
    await hangup(carol);
    await destroy('blind-answered-bridge');
    await events.settle();

    expect(refer.sipfrags).toEqual([100, 200]);
    compareAll(recorded('blind-answered'), interesting(events.events));
  });

  it('blind-noprogress: the transferer hung up first gives a second ChannelTransfer without state (blind-noprogress.events.jsonl)', async () => {
    await start();
    const alice = await inbound('alice', '100', 'Alice');
    await bridge('blind-noprogress-bridge', 'call-bridge');
    await add('blind-noprogress-bridge', alice);
    const bob = await originate('PJSIP/bob', 'outbound,bob', 'Alice <alice>');
    await add('blind-noprogress-bridge', bob);
    const refer = emu.sendRefer(bob, { kind: 'blind', destination: '1002' });
    await events.waitFor('ChannelTransfer');
    expect(refer.sipfrags).toEqual([]); // ari-only: no NOTIFY at all until the app acts
    await hangup(bob);
    await hangup(alice);
    await destroy('blind-noprogress-bridge');
    await events.settle();

    expect(refer.sipfrags).toEqual([100, 503]);
    expect(refer.terminated).toBe(true);
    const rec = recorded('blind-noprogress');
    const got = interesting(events.events);
    // Up to bob's ChannelDestroyed the order is deterministic.
    const cut = rec.findIndex((e, i) => i > 10 && e.type === 'ChannelDestroyed') + 1;
    compareAll(rec.slice(0, cut), got.slice(0, cut));
    // In the recording the app's DELETE /bridges raced alice's hangup (BridgeDestroyed lands
    // between her StasisEnd and her last HangupRequest); the emulator finishes the hangup
    // first. Same events, same shapes, just that order.
    const byType = (list: WireEvent[]) => [...list].sort((a, b) => a.type.localeCompare(b.type));
    const recTail = byType(rec.slice(cut));
    const gotTail = byType(got.slice(cut));
    expect(gotTail.map((e) => e.type)).toEqual(recTail.map((e) => e.type));
    expect(recTail.flatMap((r, i) => diff(r as Json, gotTail[i] as Json, `tail ${r.type}`))).toEqual([]);
  });
});

describe('the comparator itself', () => {
  it('notices a missing key, a wrong type and a wrong value', () => {
    const attendedTransfer = recorded('attended').find((e) => e.type === 'ChannelTransfer')!;
    const blindTransfer = recorded('blind-answered').find((e) => e.type === 'ChannelTransfer')!;
    expect(diff(attendedTransfer as Json, blindTransfer as Json).join('\n')).toMatch(/refer_to: keys recorded/);
    expect(diff({ cause: 16 }, { cause: '16' })).toEqual(['$.cause: recorded number, emulator string']);
    expect(diff({ soft: true }, { soft: false })).toEqual(['$.soft: recorded true, emulator false']);
    expect(diff({ id: 'a' }, { id: 'b' })).toEqual([]);
  });
});
