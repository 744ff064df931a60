// HTTP and WebSocket front of the emulator: authentication as res_ari.c does it,
// request logging, injected failures, and the /ari/events WebSocket.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { EventHub, EventSocket } from './events.js';
import type { RestRequest, RestResponse, RestRouter } from './rest.js';
import type { DelayInjection, FailureInjection, RandomFailure, RequestHook, RequestMatch, RequestRecord, ResponseFirst } from './types.js';
import { reasonPhrase } from './util.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { ResponseOrder } from './order.js';

export interface ServerOptions {
  username: string;
  password: string;
  router: RestRouter;
  hub: EventHub;
  /** Seeds the per-request choice of events first or response first (AriEmulatorOptions.orderSeed). */
  orderSeed?: number;
}

const AUTH_REALM = 'Asterisk REST Interface';

export class AriHttpServer {
  readonly requests: RequestRecord[] = [];
  private readonly http: Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly failures: (FailureInjection & { remaining: number })[] = [];
  private readonly delays: (DelayInjection & { remaining: number })[] = [];
  private readonly hooks: (RequestHook & { remaining: number })[] = [];
  private readonly responseFirsts: (ResponseFirst & { remaining: number })[] = [];
  private random: (RandomFailure & { next: () => number }) | undefined;
  /** Per-request order of response and events; undefined: events first, always. */
  private readonly order: ResponseOrder | undefined;
  /** Timers of late answers, cancelled when the server closes. */
  private readonly lateTimers = new Set<NodeJS.Timeout>();
  /** Per channel id: the last command queued behind a late one (see delayNext). */
  private readonly channelQueues = new Map<string, Promise<void>>();
  private refusing = false;
  private port = 0;

  constructor(private readonly opts: ServerOptions) {
    this.order = opts.orderSeed === undefined ? undefined : new ResponseOrder(opts.orderSeed, opts.hub);
    this.http = createServer((req, res) => {
      void this.onRequest(req, res);
    });
    this.http.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
  }

  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, '127.0.0.1', () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    const addr = this.http.address();
    if (addr && typeof addr === 'object') this.port = addr.port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  failNext(f: FailureInjection): void {
    this.failures.push({ ...f, method: f.method.toUpperCase(), remaining: f.times ?? 1 });
  }

  delayNext(d: DelayInjection): void {
    this.delays.push({ ...d, method: d.method.toUpperCase(), remaining: d.times ?? 1 });
  }

  beforeNext(h: RequestHook): void {
    this.hooks.push({ ...h, method: h.method.toUpperCase(), remaining: h.times ?? 1 });
  }

  respondFirst(r: ResponseFirst): void {
    this.responseFirsts.push({ ...r, method: r.method.toUpperCase(), remaining: r.times ?? 1 });
  }

  failRandomly(f: RandomFailure | undefined): void {
    if (!f) {
      this.random = undefined;
      return;
    }
    if (!(f.rate >= 0 && f.rate <= 1)) throw new Error(`ARI emulator: failRandomly rate must be in [0, 1], got ${f.rate}`);
    this.random = { ...f, methods: f.methods?.map((m) => m.toUpperCase()), next: seededRandom(f.seed ?? 1) };
  }

  /** Sends `text` as it is, as one text frame, to every open events socket (a peer sending garbage). */
  sendRawFrame(text: string): number {
    let sent = 0;
    for (const s of this.opts.hub.allSockets()) {
      if (s.ws.readyState !== s.ws.OPEN) continue;
      s.ws.send(text);
      sent++;
    }
    return sent;
  }

  refuseWebSockets(on: boolean): void {
    this.refusing = on;
  }

  /** Abrupt loss of every events socket (client sees 1006). */
  dropWebSockets(): void {
    for (const s of this.opts.hub.allSockets()) {
      this.opts.hub.removeSocket(s);
      s.ws.terminate();
    }
  }

  async close(): Promise<void> {
    this.order?.close();
    for (const t of this.lateTimers) clearTimeout(t);
    this.lateTimers.clear();
    this.dropWebSockets();
    this.wss.close();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  // ---- HTTP ------------------------------------------------------------------

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = (req.method ?? 'GET').toUpperCase();
    const rawBody = await readBody(req);
    if (url.pathname !== '/ari' && !url.pathname.startsWith('/ari/')) {
      // Not ARI: Asterisk's HTTP server's own 404 page.
      res.writeHead(404, { 'Content-Type': 'text/html' });
      res.end('<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>\n');
      return;
    }
    const path = url.pathname.slice('/ari'.length) || '/';
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    const { api_key: _apiKey, ...loggedQuery } = query;
    const record = (status: number, injected?: RequestRecord['injected'], order?: RequestRecord['order']): void => {
      this.requests.push({
        method,
        path: safeDecodePath(path),
        query: loggedQuery,
        status,
        ...(injected ? { injected } : {}),
        ...(order ? { order } : {}),
      });
    };

    let body: Record<string, unknown> | undefined;
    try {
      body = parseBody(rawBody, req.headers['content-type']);
    } catch {
      record(400);
      return send(res, { status: 400, body: { message: 'Error parsing request body' } });
    }

    if (!this.authenticated(req, query)) {
      record(401);
      return send(res, {
        status: 401,
        body: { message: 'Authentication required' },
        headers: { 'WWW-Authenticate': `Basic realm="${AUTH_REALM}"` },
      });
    }
    if (path.length > 1 && path.endsWith('/')) {
      record(404);
      return send(res, {
        status: 404,
        body: { message: `ARI URLs do not end with a slash. Try /ari${path.slice(0, -1)}` },
      });
    }

    const hook = this.take(this.hooks, method, path, loggedQuery);
    const runHook = (): void => {
      if (!hook) return;
      try {
        hook.run();
      } catch (err) {
        console.error('[ari-emulator] beforeNext step failed:', err);
      }
    };

    const injected = this.take(this.failures, method, path, loggedQuery) ?? this.randomFailure(method, path);
    if (injected) {
      runHook();
      if (injected.delayMs && !(await this.late(injected.delayMs))) return;
      record(injected.status, 'failure');
      return send(res, { status: injected.status, body: { message: injected.message ?? reasonPhrase(injected.status) } });
    }

    const restReq: RestRequest = { method, path, query: loggedQuery, body };
    const delay = this.take(this.delays, method, path, loggedQuery);
    const effectLate = delay !== undefined && (delay.effect ?? 'on-response') === 'on-response';
    // The events of an 'on-arrival' delay go out at once, only the answer is late.
    const orderFree = delay?.effect !== 'on-arrival';
    const forced = this.take(this.responseFirsts, method, path, loggedQuery);
    let release: (() => void) | undefined;
    const carryOut = (): RestResponse => {
      runHook();
      if (forced) release = this.opts.hub.holdDelivery();
      else release = orderFree ? this.order?.draw() : undefined;
      return this.handle(release ? { ...restReq, responseFirst: true } : restReq);
    };
    // A channel's commands run one at a time, in order (res_stasis control queue): while a
    // late request on a channel is not carried out yet, later commands on it wait behind it.
    const channels = commandChannels(method, path, loggedQuery);
    const ahead = channels.flatMap((id) => this.channelQueues.get(id) ?? []);
    let out: RestResponse;
    if (!effectLate && ahead.length === 0) {
      out = carryOut();
    } else {
      let done!: () => void;
      const mine = new Promise<void>((r) => (done = r));
      for (const id of channels) this.channelQueues.set(id, mine);
      await Promise.all(ahead);
      if (effectLate && !(await this.late(delay.delayMs))) return;
      out = carryOut();
      done();
      for (const id of channels) if (this.channelQueues.get(id) === mine) this.channelQueues.delete(id);
    }
    if (delay?.effect === 'on-arrival' && !(await this.late(delay.delayMs))) return;
    record(out.status, delay ? 'delay' : undefined, release ? 'response-first' : undefined);
    send(res, out);
    if (release && forced) this.releaseLater(res, release, forced.eventsAfterMs);
    else if (release) this.order?.releaseAfter(res, release);
  }

  private handle(req: RestRequest): RestResponse {
    try {
      return this.opts.router.handle(req);
    } catch (err) {
      console.error('[ari-emulator] handler crashed:', err);
      return { status: 500, body: { message: 'Internal Server Error' } };
    }
  }

  /** Waits `ms`; false when the server closed meanwhile (the request is then dropped). */
  /** respondFirst: the held events go `ms` after the response has been handed to the socket. */
  private releaseLater(res: ServerResponse, release: () => void, ms: number): void {
    const go = (): void => void this.late(ms).then(release);
    if (res.writableFinished) go();
    else res.once('finish', go);
  }

  private late(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.lateTimers.delete(t);
        resolve(true);
      }, ms);
      this.lateTimers.add(t);
    });
  }

  private randomFailure(method: string, path: string): FailureInjection | undefined {
    const r = this.random;
    if (!r) return undefined;
    const decoded = safeDecodePath(path);
    const matches = (re: RegExp) => re.test(path) || re.test(decoded);
    if (r.methods && !r.methods.includes(method)) return undefined;
    if (r.path && !matches(r.path)) return undefined;
    if (r.exclude?.some(matches)) return undefined;
    if (r.next() >= r.rate) return undefined;
    const status = r.status ?? 500;
    return { method, path: /.*/, status, ...(r.message ? { message: r.message } : {}) };
  }

  /** HTTP Basic first, else `?api_key=user:pass` (res_ari.c authenticate_user). */
  private authenticated(req: IncomingMessage, query: Record<string, string>): boolean {
    const header = req.headers.authorization;
    if (header) {
      const m = /^Basic\s+(.+)$/i.exec(header);
      if (!m) return false;
      const decoded = Buffer.from(m[1] ?? '', 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      return i >= 0 && decoded.slice(0, i) === this.opts.username && decoded.slice(i + 1) === this.opts.password;
    }
    const key = query.api_key;
    if (key === undefined) return false;
    const i = key.indexOf(':');
    return i >= 0 && key.slice(0, i) === this.opts.username && key.slice(i + 1) === this.opts.password;
  }

  /** The first injection of `list` matching the request, counted down (and removed when used up). */
  private take<T extends RequestMatch & { remaining: number }>(
    list: T[],
    method: string,
    path: string,
    query: Record<string, string>,
  ): T | undefined {
    const decoded = safeDecodePath(path);
    const i = list.findIndex(
      (f) =>
        f.method === method &&
        (f.path.test(path) || f.path.test(decoded)) &&
        Object.entries(f.query ?? {}).every(([k, v]) => query[k] === v),
    );
    if (i < 0) return undefined;
    const f = list[i]!;
    f.remaining--;
    if (f.remaining <= 0) list.splice(i, 1);
    return f;
  }

  // ---- WebSocket ---------------------------------------------------------------

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    if (this.refusing) return rejectUpgrade(socket, 503, { message: 'Service Unavailable' });
    if (url.pathname !== '/ari/events') return rejectUpgrade(socket, 404, { message: 'Resource not found' });
    if (!this.authenticated(req, query)) {
      return rejectUpgrade(socket, 401, { message: 'Authentication required' }, {
        'WWW-Authenticate': `Basic realm="${AUTH_REALM}"`,
      });
    }
    const apps = (query.app ?? '').split(',').map((a) => a.trim()).filter(Boolean);
    if (apps.length === 0) return rejectUpgrade(socket, 400, 'HTTP request is missing param: [app]');
    const subscribeAll = /^(true|yes|1)$/i.test(query.subscribeAll ?? '');

    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const entry: EventSocket = { ws, apps, subscribeAll };
      // An unknown app name is simply registered (stasis_app_register), like Asterisk.
      this.opts.hub.addSocket(entry);
      ws.on('close', () => this.opts.hub.removeSocket(entry));
      ws.on('error', () => this.opts.hub.removeSocket(entry));
      ws.on('message', () => {
        /* Asterisk reads and ignores what clients send on the events socket. */
      });
    });
  }
}

function send(res: ServerResponse, out: RestResponse): void {
  const headers: Record<string, string> = { ...(out.headers ?? {}) };
  if (out.status === 204 || out.body === undefined) {
    res.writeHead(out.status, headers);
    res.end();
    return;
  }
  const text = JSON.stringify(out.body);
  headers['Content-Type'] = 'application/json';
  headers['Content-Length'] = String(Buffer.byteLength(text));
  res.writeHead(out.status, headers);
  res.end(text);
}

function rejectUpgrade(socket: Duplex, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const type = typeof body === 'string' ? 'text/plain' : 'application/json';
  const lines = [
    `HTTP/1.1 ${status} ${reasonPhrase(status)}`,
    `Content-Type: ${type}`,
    `Content-Length: ${Buffer.byteLength(text)}`,
    'Connection: close',
    ...Object.entries(extra).map(([k, v]) => `${k}: ${v}`),
    '',
    text,
  ];
  socket.end(lines.join('\r\n'));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** JSON object bodies and form bodies both carry parameters in ARI. */
function parseBody(raw: string, contentType: string | undefined): Record<string, unknown> | undefined {
  if (!raw.trim()) return undefined;
  const type = (contentType ?? '').toLowerCase();
  if (type.includes('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(raw));
  }
  const parsed: unknown = JSON.parse(raw);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  return parsed as Record<string, unknown>;
}

/**
 * The channels whose control queue a request goes through: `/channels/{id}/...` commands
 * and the `channel` list of bridge commands. Reads (GET) and the hangup itself
 * (`DELETE /channels/{id}`, a soft hangup, not a queued command) do not wait.
 */
function commandChannels(method: string, path: string, query: Record<string, string>): string[] {
  if (method === 'GET') return [];
  const seg = safeDecodePath(path).split('/').filter(Boolean);
  if (seg[0] === 'channels' && seg[1] !== undefined) return method === 'DELETE' && seg.length === 2 ? [] : [seg[1]];
  if (seg[0] === 'bridges' && query.channel) return query.channel.split(',').map((c) => c.trim()).filter(Boolean);
  return [];
}


function safeDecodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
