// The recorder's ARI side: REST calls and event WebSockets, every one written
// down in the shared traces' format (rest.jsonl: sent/received/method/path/query/
// body/status/response; events.jsonl: each event exactly as received), plus a
// steps log with local receive times, so orders (event before or after the REST
// response that caused it) can be read off afterwards.

import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';

export type AriEvent = { type: string; [key: string]: unknown };

export interface RestRecord {
  sent: string;
  received: string;
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  status: number;
  response: unknown;
}

export interface RestResult {
  status: number;
  body: unknown;
}

/** One scenario's log: steps (timed lines), REST records and events (per socket). */
export class ScenarioLog {
  readonly steps: string[] = [];
  readonly rest: RestRecord[] = [];
  /** Events of the main socket, verbatim. */
  readonly events: string[] = [];
  /** Events of other sockets (multi-app scenario), by label. */
  readonly otherEvents = new Map<string, string[]>();
  /** REST calls of labelled clients (one per Asterisk node), by label; also in `rest`. */
  readonly labelledRest = new Map<string, RestRecord[]>();
  private readonly t0 = performance.now();

  step(text: string): void {
    this.steps.push(`[+${((performance.now() - this.t0) / 1000).toFixed(4)}s] ${text}`);
  }
}

export class AriClient {
  private readonly auth: string;
  private readonly sockets: EventSocket[] = [];

  constructor(
    readonly baseUrl: string,
    user: string,
    password: string,
    private readonly log: ScenarioLog,
    /** Several Asterisk nodes: whose calls these are, in the steps (`REST[a] >`) and `labelledRest`. */
    private readonly label?: string,
  ) {
    this.auth = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  }

  /** One REST call, logged with its send and receive times. */
  async call(method: string, path: string, query: Record<string, string | number> = {}, body?: unknown): Promise<RestResult> {
    const url = new URL(`${this.baseUrl}/ari${path}`);
    const q: Record<string, string> = {};
    for (const [k, v] of Object.entries(query)) {
      q[k] = String(v);
      url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = { Authorization: this.auth };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const shown = `${method} ${path}${Object.keys(q).length ? `?${new URLSearchParams(q).toString()}` : ''}`;
    const rest = this.label ? `REST[${this.label}]` : 'REST';
    this.log.step(`${rest} > ${shown}`);
    const sent = new Date().toISOString();
    const res = await fetch(url, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    const received = new Date().toISOString();
    let response: unknown = null;
    try {
      response = text ? JSON.parse(text) : null;
    } catch {
      response = text;
    }
    const record = { sent, received, method, path, query: q, body: body ?? null, status: res.status, response };
    this.log.rest.push(record);
    if (this.label) this.log.labelledRest.set(this.label, [...(this.log.labelledRest.get(this.label) ?? []), record]);
    this.log.step(`${rest} < ${shown} -> ${res.status}${text ? ` ${text.slice(0, 200)}` : ''}`);
    return { status: res.status, body: response };
  }

  /** Opens an events socket; `label` 'main' goes to events.jsonl, others to their own file. */
  async connect(app: string, subscribeAll: boolean, label = 'main'): Promise<EventSocket> {
    const ws = `${this.baseUrl.replace(/^http/, 'ws')}/ari/events?app=${encodeURIComponent(app)}&subscribeAll=${subscribeAll}`;
    const s = await EventSocket.open(ws, this.auth, label, this.log);
    this.sockets.push(s);
    return s;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.sockets.map((s) => s.close()));
  }
}

export class EventSocket {
  readonly received: AriEvent[] = [];
  private waiters: (() => void)[] = [];

  private constructor(
    private readonly ws: WebSocket,
    readonly label: string,
    log: ScenarioLog,
  ) {
    // A socket that receives nothing still gets its (empty) file.
    if (label !== 'main' && !log.otherEvents.has(label)) log.otherEvents.set(label, []);
    // An Asterisk stopped on purpose closes the socket, sometimes with a reset.
    ws.on('error', (err) => log.step(`WS ${label} error ${err.message}`));
    ws.on('message', (data) => {
      const text = String(data);
      const e = JSON.parse(text) as AriEvent;
      this.received.push(e);
      if (label === 'main') log.events.push(text);
      else {
        const list = log.otherEvents.get(label) ?? [];
        list.push(text);
        log.otherEvents.set(label, list);
      }
      log.step(`EVENT[${label}] ${summarise(e)}`);
      for (const w of this.waiters) w();
    });
  }

  static open(url: string, auth: string, label: string, log: ScenarioLog): Promise<EventSocket> {
    const ws = new WebSocket(url, { headers: { Authorization: auth } });
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        log.step(`WS ${label} connected ${url.replace(/^ws:\/\/[^/]+/, '')}`);
        resolve(new EventSocket(ws, label, log));
      });
      ws.once('error', reject);
    });
  }

  /** Waits for an event (at or after index `since`) matching `match`. */
  async waitFor(match: (e: AriEvent) => boolean, what: string, timeoutMs = 10_000, since = 0): Promise<AriEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.slice(since).find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`recorder: no ${what} within ${timeoutMs} ms on socket ${this.label}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
      this.waiters = [];
    }
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}

/** Helpers to match events of one channel / type. */
export const ev = {
  of:
    (type: string, channelId?: string, extra: (e: AriEvent) => boolean = () => true) =>
    (e: AriEvent): boolean =>
      e.type === type && (channelId === undefined || channelIdOf(e) === channelId) && extra(e),
};

export function channelIdOf(e: AriEvent): string | undefined {
  const ch = (e.channel ?? e.peer) as { id?: string } | undefined;
  return ch?.id;
}

function summarise(e: AriEvent): string {
  const ch = (e.channel ?? e.peer) as { name?: string; state?: string } | undefined;
  const br = e.bridge as { id?: string; technology?: string; channels?: string[] } | undefined;
  const parts = [e.type];
  if (ch?.name) parts.push(`${ch.name} ${ch.state ?? ''}`.trim());
  if (br?.id) parts.push(`bridge=${br.id} tech=${br.technology} n=${br.channels?.length}`);
  if (e.type === 'ChannelVarset') parts.push(`${String(e.variable)}=${String(e.value)}`);
  if (e.type === 'Dial') parts.push(`dialstatus=${String(e.dialstatus)}`);
  if (e.type === 'ChannelDestroyed' || e.type === 'ChannelHangupRequest') parts.push(`cause=${String(e.cause)} soft=${String(e.soft)}`);
  if (e.type === 'ChannelTransfer') parts.push(`state=${String(e.state ?? '(none)')}`);
  if (e.type === 'ChannelHold') parts.push(`musicclass=${String(e.musicclass)}`);
  return parts.join(' ');
}
