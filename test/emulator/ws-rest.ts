// REST over the events WebSocket (Asterisk 22.4+): a client sends RESTRequest text frames
// on /ari/events and gets RESTResponse frames back on the same socket. The frames are
// shaped as recorded from Asterisk 22.10.1; the requests go through the same pipeline as
// HTTP ones (pipeline.ts).

import { WebSocket, type RawData } from 'ws';
import { BAD_BODY, parseBody, type IncomingRequest, type RequestPipeline } from './pipeline.js';
import type { RestResponse } from './rest.js';
import { asteriskTimestamp, reasonPhrase } from './util.js';

/** What the emulator takes from a RESTRequest frame. */
export interface RequestFrame {
  transactionId: string;
  requestId: string;
  method: string;
  /** Relative to /ari, without its query string: the `uri` of the response. */
  uri: string;
  /** The uri's query string and `query_strings`, in that order. */
  query: Record<string, string>;
  contentType: string | undefined;
  /** `message_body`, '' without one. */
  body: string;
}

/**
 * The request in a text frame, or undefined for a frame Asterisk ignores without an
 * answer: not JSON, not a RESTRequest, no transaction_id or request_id; also (*decided*)
 * one without a method or uri.
 */
export function readRequestFrame(text: string): RequestFrame | undefined {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (msg === null || typeof msg !== 'object') return undefined;
  const f = msg as Record<string, unknown>;
  if (f.type !== 'RESTRequest' || typeof f.transaction_id !== 'string' || typeof f.request_id !== 'string') return undefined;
  if (typeof f.method !== 'string' || typeof f.uri !== 'string') return undefined;
  const q = f.uri.indexOf('?');
  const query: Record<string, string> = {};
  if (q >= 0) for (const [k, v] of new URLSearchParams(f.uri.slice(q + 1))) query[k] = v;
  for (const entry of Array.isArray(f.query_strings) ? (f.query_strings as unknown[]) : []) {
    const { name, value } = (entry ?? {}) as { name?: unknown; value?: unknown };
    if (typeof name === 'string' && typeof value === 'string') query[name] = value;
  }
  return {
    transactionId: f.transaction_id,
    requestId: f.request_id,
    method: f.method,
    uri: q >= 0 ? f.uri.slice(0, q) : f.uri,
    query,
    contentType: typeof f.content_type === 'string' ? f.content_type : undefined,
    body: typeof f.message_body === 'string' ? f.message_body : '',
  };
}

/** The RESTResponse frame: ids echoed, the body as a JSON string; none on a 204. */
export function responseFrame(req: RequestFrame, out: RestResponse, application: string, asteriskId: string): string {
  const withBody = out.status !== 204 && out.body !== undefined;
  return JSON.stringify({
    type: 'RESTResponse',
    transaction_id: req.transactionId,
    request_id: req.requestId,
    status_code: out.status,
    reason_phrase: reasonPhrase(out.status),
    uri: req.uri,
    ...(withBody ? { content_type: 'application/json', message_body: JSON.stringify(out.body) } : {}),
    application,
    timestamp: asteriskTimestamp(),
    asterisk_id: asteriskId,
  });
}

/**
 * The REST requests of one events socket. Asterisk reads them on the socket's own thread
 * and answers each before it reads the next: one at a time, in order, a failed one not
 * stopping the next. Requests still waiting when the socket goes are never carried out.
 */
export class WsRestSession {
  private last: Promise<void> = Promise.resolve();

  constructor(
    private readonly ws: WebSocket,
    private readonly pipeline: RequestPipeline,
    /** `application` of the responses: the `app` the socket connected with. */
    private readonly application: string,
    private readonly asteriskId: string,
  ) {}

  receive(data: RawData, isBinary: boolean): void {
    if (isBinary) return; // Asterisk reads text frames only
    const frame = readRequestFrame(String(data));
    if (!frame) return;
    this.last = this.last
      .then(() => this.carryOut(frame))
      .catch((err: unknown) => console.error('[ari-emulator] WebSocket REST request failed:', err));
  }

  private carryOut(frame: RequestFrame): Promise<void> {
    if (this.ws.readyState !== WebSocket.OPEN) return Promise.resolve(); // the socket went before its turn
    const answer = (out: RestResponse): Promise<void> => this.send(responseFrame(frame, out, this.application, this.asteriskId));
    const req: IncomingRequest = { method: frame.method, path: `/${frame.uri}`, query: frame.query, body: undefined, via: 'websocket' };
    // Recorded: the uri is relative to /ari; with a leading slash Asterisk finds no method.
    if (frame.uri.startsWith('/')) return this.pipeline.refuse(req, { status: 405, body: { message: 'Invalid method' } }, answer);
    let body: Record<string, unknown> | undefined;
    try {
      body = parseBody(frame.body, frame.contentType);
    } catch {
      return this.pipeline.refuse(req, BAD_BODY, answer);
    }
    return this.pipeline.run({ ...req, body }, answer);
  }

  /** Resolves once the frame was handed to the socket; at once for a socket gone (that answer is lost). */
  private send(text: string): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState !== WebSocket.OPEN) return resolve();
      this.ws.send(text, () => resolve());
    });
  }
}
