// ARI REST over the events WebSocket (Asterisk 22.4+): a RESTRequest frame
// out, a RESTResponse frame back on the same socket. On a real Asterisk a
// round trip costs about a quarter of one over HTTP (0.2-0.35 ms against
// 0.8-1.2 ms, measured on loopback), and Asterisk carries out one socket's
// requests one after the other, in order. An older Asterisk ignores the
// frames; a probe on every new connection tells the two apart, and until it
// has answered (or when it never does) requests go over HTTP.
//
// In order also means one slow request holds up every later one on the
// socket: while a request has waited longer than `stallMs` (timed out or
// not), new requests go over HTTP, whose connections do not wait on each other.
import WebSocket from 'ws';
import type { Logger } from '../logger.js';
import { TransportFailure, type AriTransport, type RawRequest, type RawResponse } from './transport.js';

export interface WebSocketRestOptions {
  timeoutMs: number;
  /** How long a new connection's probe may take before REST stays on HTTP for that connection. */
  probeTimeoutMs?: number;
  /** A request unanswered for this long stalls the socket: new requests take HTTP meanwhile. Default: half the timeout, at most 500 ms. */
  stallMs?: number;
  logger: Logger;
}

interface Pending {
  resolve(response: RawResponse): void;
  reject(failure: TransportFailure): void;
  timer: NodeJS.Timeout;
}

const PROBE = { method: 'GET', path: '/asterisk/ping', query: undefined, body: undefined } as const;

export class WebSocketRest implements AriTransport {
  private socket: WebSocket | undefined;
  /** The socket whose probe was answered: requests may use it. */
  private confirmed: WebSocket | undefined;
  private sequence = 0;
  private readonly pending = new Map<string, Pending>();
  private readonly inFlight = new Set<Promise<RawResponse>>();
  /** When each request still unanswered on the socket was sent, timed out ones included; oldest first (Asterisk answers in order). */
  private readonly unanswered = new Map<string, number>();
  private readonly stallMs: number;
  private readonly log: Logger;

  constructor(private readonly options: WebSocketRestOptions) {
    this.log = options.logger.child({ component: 'ari-ws-rest' });
    this.stallMs = options.stallMs ?? Math.min(500, options.timeoutMs / 2);
  }

  /** Requests can go over the events socket now: it is confirmed, open, and not held up by a slow request. */
  get available(): boolean {
    if (this.confirmed === undefined || this.confirmed !== this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    const oldest = this.unanswered.values().next();
    return oldest.done === true || performance.now() - oldest.value < this.stallMs;
  }

  /** A new events connection: probed, then used once Asterisk answers on it. */
  attach(socket: WebSocket): void {
    this.detach();
    this.socket = socket;
    void this.probe(socket);
  }

  /**
   * The events connection is about to close (a graceful stop): new requests
   * take HTTP from now on; resolves once those sent on the socket have their
   * answers (or have timed out).
   */
  async drain(): Promise<void> {
    this.confirmed = undefined;
    await Promise.allSettled(this.inFlight);
  }

  /** The events connection is gone: what was sent on it will never be answered. */
  detach(): void {
    this.socket = undefined;
    this.confirmed = undefined;
    this.unanswered.clear();
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new TransportFailure('network', 'the events WebSocket closed before Asterisk answered'));
    }
  }

  /** A RESTResponse frame from the events socket. */
  receive(frame: Record<string, unknown>): void {
    const id = frame.request_id;
    if (typeof id !== 'string') return;
    this.unanswered.delete(id);
    const p = this.pending.get(id);
    if (!p) return; // timed out already, or not ours
    this.pending.delete(id as string);
    clearTimeout(p.timer);
    p.resolve(decodeResponse(frame));
  }

  send(request: RawRequest): Promise<RawResponse> {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new TransportFailure('network', 'the events WebSocket is not open'));
    }
    return this.sendOn(socket, request, this.options.timeoutMs);
  }

  private sendOn(socket: WebSocket, request: RawRequest, timeoutMs: number): Promise<RawResponse> {
    const id = String(++this.sequence);
    const answered = new Promise<RawResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TransportFailure('timeout', `no RESTResponse within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.unanswered.set(id, performance.now());
      socket.send(encodeRequest(id, request), (err) => {
        if (!err) return;
        this.unanswered.delete(id);
        if (!this.pending.delete(id)) return;
        clearTimeout(timer);
        reject(new TransportFailure('network', err.message));
      });
    });
    this.inFlight.add(answered);
    const forget = () => this.inFlight.delete(answered);
    answered.then(forget, forget);
    return answered;
  }

  private async probe(socket: WebSocket): Promise<void> {
    try {
      const res = await this.sendOn(socket, PROBE, this.options.probeTimeoutMs ?? 2000);
      if (res.status !== 200) throw new Error(`${res.status} ${res.reason}`);
      if (this.socket !== socket) return;
      this.confirmed = socket;
      this.log.info('REST requests go over the events WebSocket');
    } catch (err) {
      if (this.socket !== socket) return;
      this.log.info(
        { reason: err instanceof Error ? err.message : String(err) },
        'Asterisk does not answer REST over the events WebSocket (it needs Asterisk 22.4 or later); REST goes over HTTP',
      );
    }
  }
}

// The uri is relative to /ari and must not start with a slash (Asterisk answers 405).
function encodeRequest(id: string, request: RawRequest): string {
  const frame: Record<string, unknown> = {
    type: 'RESTRequest',
    transaction_id: id,
    request_id: id,
    method: request.method,
    uri: request.path.replace(/^\/+/, ''),
  };
  if (request.query) frame.query_strings = Object.entries(request.query).map(([name, value]) => ({ name, value }));
  if (request.body !== undefined) {
    frame.content_type = 'application/json';
    frame.message_body = JSON.stringify(request.body);
  }
  return JSON.stringify(frame);
}

function decodeResponse(frame: Record<string, unknown>): RawResponse {
  const status = typeof frame.status_code === 'number' ? frame.status_code : 0;
  const reason = typeof frame.reason_phrase === 'string' ? frame.reason_phrase : '';
  const body = typeof frame.message_body === 'string' ? frame.message_body : '';
  if (body === '') return { status, reason, data: undefined };
  try {
    return { status, reason, data: JSON.parse(body) as unknown };
  } catch {
    return { status, reason, data: body };
  }
}
