// Reading a recorded trace (test/fixtures/traces): the events of each socket and the
// REST calls with their send times, and which event types the comparison covers.

import { existsSync, readFileSync } from 'node:fs';
import type { Json } from './normalise.js';

export type TraceEvent = { type: string; timestamp: string; [key: string]: Json };

export interface RestEntry {
  sent: string;
  received: string;
  method: string;
  path: string;
  query: Record<string, string | number>;
  body: Json;
  status: number;
  response: Json;
}

/**
 * The event types compared with the recordings. Left out, because the emulator does not
 * emit all of them: ChannelVarset, ChannelDialplan, DeviceStateChanged, ChannelCallerId,
 * ChannelConnectedLine.
 */
export const COMPARED = new Set([
  'ChannelCreated',
  'StasisStart',
  'StasisEnd',
  'ChannelStateChange',
  'ChannelHangupRequest',
  'ChannelDestroyed',
  'ChannelEnteredBridge',
  'ChannelLeftBridge',
  'BridgeCreated',
  'BridgeDestroyed',
  'ChannelTransfer',
  'ChannelHold',
  'ChannelUnhold',
  'Dial',
]);

function fixture(file: string): string {
  return new URL(`../../fixtures/traces/${file}`, import.meta.url).pathname;
}

function jsonl<T>(file: string): T[] {
  const path = fixture(file);
  if (!existsSync(path)) throw new Error(`conformance: no fixture ${file}`);
  // (a socket that received nothing has an empty file)
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as T);
}

/** The compared events of `<trace>.events.jsonl`, or of `<trace>.<socket>.events.jsonl`. */
export function recordedEvents(trace: string, socket?: string): TraceEvent[] {
  return jsonl<TraceEvent>(`${trace}${socket ? `.${socket}` : ''}.events.jsonl`).filter((e) => COMPARED.has(e.type));
}

export function recordedRest(trace: string): RestEntry[] {
  return jsonl<RestEntry>(`${trace}.rest.jsonl`);
}

/** Epoch ms of an Asterisk timestamp (`2026-11-21T12:47:51.700+0000`) or an ISO one. */
export function epochMs(ts: string): number {
  const ms = Date.parse(ts.replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));
  if (Number.isNaN(ms)) throw new Error(`conformance: bad timestamp ${ts}`);
  return ms;
}

/** `Type channel-name` (or bridge id, or transfer state), to show sequences readably. */
export function label(e: { type: string; [k: string]: unknown }): string {
  const ch = (e.channel ?? e.peer) as { name?: string } | undefined;
  const name = ch?.name?.replace(/-[0-9a-f]{8}(;[12])?$/, '$1');
  const br = (e.bridge as { id?: string } | undefined)?.id;
  let extra = name ?? br ?? '';
  if (e.type === 'ChannelTransfer') extra = String(e.state ?? '(no state)');
  if (e.type === 'Dial') extra = `${name} ${String(e.dialstatus) || '""'}`;
  if (e.type === 'ChannelDestroyed' || e.type === 'ChannelHangupRequest') extra = `${name} ${String(e.cause ?? '')}`.trim();
  if (e.type === 'ChannelEnteredBridge' || e.type === 'ChannelLeftBridge') extra = `${name} ${br}`;
  return `${e.type} ${extra}`.trim();
}
