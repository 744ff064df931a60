// Helpers for the emulator's own tests: plain fetch for REST and a `ws` client for
// events, so the tests do not depend on the service's ARI client.

import { WebSocket } from 'ws';
import type { AriEmulator } from './emulator.js';

export const USER = 'asterisk';
export const PASS = 'secret';

export interface AriResponse {
  status: number;
  body: unknown;
  headers: Headers;
}

/** One REST call to the emulator with HTTP Basic auth (set `auth: false` to omit it). */
export async function ari(
  emu: AriEmulator,
  method: string,
  path: string,
  opts: { query?: Record<string, string | number>; body?: unknown; auth?: boolean; authHeader?: string } = {},
): Promise<AriResponse> {
  const url = new URL(`${emu.url}/ari${path}`);
  for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, String(v));
  const headers: Record<string, string> = {};
  if (opts.authHeader) headers.Authorization = opts.authHeader;
  else if (opts.auth !== false) headers.Authorization = `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const res = await fetch(url, { method, headers, body });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined, headers: res.headers };
}

export type WireEvent = { type: string; [key: string]: unknown };

export interface EventClient {
  readonly events: WireEvent[];
  /** Waits for an event of `type` matching `match`, received at or after index `since`. */
  waitFor(type: string, match?: (e: WireEvent) => boolean, since?: number, timeoutMs?: number): Promise<WireEvent>;
  /** Waits until no event arrived for `quietMs`. */
  settle(quietMs?: number): Promise<void>;
  /** Sends a text frame: a string as it is, anything else as JSON (a RESTRequest). */
  send(frame: unknown): void;
  close(): Promise<void>;
}

/** Opens `/ari/events` and collects every frame (events, and RESTResponses to what it sends). */
export async function connectEvents(
  emu: AriEmulator,
  opts: { app?: string; subscribeAll?: boolean; user?: string; pass?: string } = {},
): Promise<EventClient> {
  const app = opts.app ?? emu.app;
  const url = `${emu.url.replace('http', 'ws')}/ari/events?app=${encodeURIComponent(app)}&subscribeAll=${opts.subscribeAll ?? true}`;
  const ws = new WebSocket(url, {
    headers: { Authorization: `Basic ${Buffer.from(`${opts.user ?? USER}:${opts.pass ?? PASS}`).toString('base64')}` },
  });
  const events: WireEvent[] = [];
  let lastAt = Date.now();
  ws.on('message', (data) => {
    events.push(JSON.parse(String(data)) as WireEvent);
    lastAt = Date.now();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  await emu.waitForSocket();
  return {
    events,
    async waitFor(type, match = () => true, since = 0, timeoutMs = 2000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = events.slice(since).find((e) => e.type === type && match(e));
        if (found) return found;
        if (Date.now() > deadline) {
          throw new Error(`no ${type} event within ${timeoutMs} ms; got: ${events.slice(since).map((e) => e.type).join(', ')}`);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    async settle(quietMs = 40) {
      while (Date.now() - lastAt < quietMs) await new Promise((r) => setTimeout(r, 5));
    },
    send(frame) {
      ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
    },
    async close() {
      if (ws.readyState === WebSocket.CLOSED) return;
      await new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        ws.close();
      });
    },
  };
}

/** Attempts an upgrade and reports the HTTP status of a refusal (or 101 when it opened). */
export function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    ws.once('error', () => resolve(-1));
  });
}

/** Names of the event types we compare with the recordings (the rest is noise). */
export const INTERESTING = new Set([
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
]);

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
