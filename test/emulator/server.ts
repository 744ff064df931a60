// HTTP and WebSocket front of the emulator: authentication as res_ari.c does it, the
// /ari/events WebSocket, and REST requests, over HTTP or as frames on that socket
// (ws-rest.ts), handed to the shared pipeline (pipeline.ts).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { EventHub, EventSocket } from './events.js';
import { BAD_BODY, parseBody, type RequestPipeline } from './pipeline.js';
import type { RestResponse } from './rest.js';
import { reasonPhrase } from './util.js';
import { WsRestSession } from './ws-rest.js';

export interface ServerOptions {
  username: string;
  password: string;
  pipeline: RequestPipeline;
  hub: EventHub;
  /** `asterisk_id` of RESTResponse frames. */
  asteriskId: string;
}

const AUTH_REALM = 'Asterisk REST Interface';

export class AriHttpServer {
  private readonly http: Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  private refusing = false;
  private port = 0;

  constructor(private readonly opts: ServerOptions) {
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
    const answer = (out: RestResponse): Promise<void> => send(res, out);
    const pipeline = this.opts.pipeline;

    let body: Record<string, unknown> | undefined;
    try {
      body = parseBody(rawBody, req.headers['content-type']);
    } catch {
      return pipeline.refuse({ method, path, query: loggedQuery, body: undefined }, BAD_BODY, answer);
    }
    const incoming = { method, path, query: loggedQuery, body };
    if (!this.authenticated(req, query)) {
      return pipeline.refuse(incoming, {
        status: 401,
        body: { message: 'Authentication required' },
        headers: { 'WWW-Authenticate': `Basic realm="${AUTH_REALM}"` },
      }, answer);
    }
    if (path.length > 1 && path.endsWith('/')) {
      return pipeline.refuse(incoming, {
        status: 404,
        body: { message: `ARI URLs do not end with a slash. Try /ari${path.slice(0, -1)}` },
      }, answer);
    }
    return pipeline.run(incoming, answer);
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
      const rest = new WsRestSession(ws, this.opts.pipeline, apps.join(','), this.opts.asteriskId);
      ws.on('message', (data, isBinary) => rest.receive(data, isBinary));
    });
  }
}

/** Writes the response; resolves once it is handed to the socket, or the client is gone. */
function send(res: ServerResponse, out: RestResponse): Promise<void> {
  const headers: Record<string, string> = { ...(out.headers ?? {}) };
  if (out.status === 204 || out.body === undefined) {
    res.writeHead(out.status, headers);
    res.end();
  } else {
    const text = JSON.stringify(out.body);
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = String(Buffer.byteLength(text));
    res.writeHead(out.status, headers);
    res.end(text);
  }
  return new Promise((resolve) => {
    // A client that gave up has closed the response already: no event will come.
    if (res.writableFinished || res.closed) return resolve();
    res.once('finish', resolve);
    res.once('close', resolve);
  });
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
  // A client may reset the connection while the refusal is written (a
  // service exiting as it retries): that is no error of the emulator's.
  socket.on('error', () => {});
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
