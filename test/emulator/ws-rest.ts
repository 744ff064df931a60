// REST over the events WebSocket (Asterisk 22.4+): a client sends RESTRequest text frames
// on /ari/events and gets RESTResponse frames back on the same socket. The frames are
// shaped as recorded from Asterisk 22.10.1; the requests go through the same pipeline as
// HTTP ones (pipeline.ts). Frames Asterisk cannot take as a request are answered with a
// 400 as its source does (session_read, parse_rest_request_msg, send_rest_response).

import { WebSocket, type RawData } from 'ws';
import type { IncomingRequest, RequestPipeline } from './pipeline.js';
import type { RestResponse } from './rest.js';
import { asteriskTimestamp, reasonPhrase } from './util.js';

/** A RESTRequest frame Asterisk carries out. */
export interface RequestFrame {
  kind: 'request';
  /** '' when the frame had none (both ids are optional). */
  transactionId: string;
  requestId: string;
  method: string;
  /** Relative to /ari, without its query string: the `uri` of the response. */
  uri: string;
  /** The uri's query string and `query_strings`, in that order. */
  query: Record<string, string>;
  /** `message_body` as parsed for its content_type; undefined without one (or for a JSON array). */
  body: Record<string, unknown> | undefined;
}

/** A text frame Asterisk answers with a 400 at once, without carrying anything out. */
export interface RefusedFrame {
  kind: 'refused';
  transactionId: string;
  requestId: string;
  /** The `uri` of the answer: '' until Asterisk got to reading it, then without its query. */
  uri: string;
  reasonPhrase: string;
  /** The `message` of the answer's JSON body; none for a frame that is not JSON. */
  message: string | undefined;
  /** What the request log shows: the frame's method, uri (as a path) and query, as far as it had them. */
  logged: { method: string; path: string; query: Record<string, string> };
}

/** ast_get_http_method_from_string: exact, case-sensitive names (main/http.c); no PATCH. */
const HTTP_METHODS = new Set(['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/** ast_json_load_buf: jansson without JSON_DECODE_ANY takes an object or an array, nothing else. */
function loadJson(text: string): object | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** ast_json_string_get: the string, '' for anything else (Asterisk's NULL, which it treats as empty). */
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

const isNameValue = (e: unknown): e is { name: string; value: string } =>
  e !== null && typeof e === 'object' && typeof (e as { name?: unknown }).name === 'string' && typeof (e as { value?: unknown }).value === 'string';

/**
 * Reads a text frame as Asterisk 22.10.1 does: `session_read` (res/ari/ari_websockets.c)
 * answers a frame that is not JSON with a 400 "Failed to parse request message JSON";
 * `parse_rest_request_msg` (res/ari/ari_websocket_requests.c) answers the first failing
 * check with a 400 "Bad request" and `{"message": ...}`. transaction_id and request_id
 * are optional.
 */
export function readRequestFrame(text: string): RequestFrame | RefusedFrame {
  const msg = loadJson(text);
  if (!msg) {
    return {
      kind: 'refused',
      transactionId: '',
      requestId: '',
      uri: '',
      reasonPhrase: 'Failed to parse request message JSON',
      message: undefined,
      logged: { method: '', path: '', query: {} },
    };
  }
  const f = (Array.isArray(msg) ? {} : msg) as Record<string, unknown>;
  const transactionId = str(f.transaction_id);
  const requestId = str(f.request_id);
  const method = str(f.method);
  const rawUri = str(f.uri);
  const q = rawUri.indexOf('?');
  const uri = q >= 0 ? rawUri.slice(0, q) : rawUri;
  const query: Record<string, string> = {};
  if (q >= 0) for (const [k, v] of new URLSearchParams(rawUri.slice(q + 1))) query[k] = v;
  // ast_json_nvp_array_to_ast_variables: anything but a non-empty array counts as none.
  const list: unknown[] = Array.isArray(f.query_strings) ? f.query_strings : [];
  for (const e of list) if (isNameValue(e)) query[e.name] = e.value;

  const refused = (message: string, echoedUri: string): RefusedFrame => ({
    kind: 'refused',
    transactionId,
    requestId,
    uri: echoedUri,
    reasonPhrase: 'Bad request',
    message,
    logged: { method, path: rawUri ? `/${uri}` : '', query },
  });
  const type = str(f.type);
  if (!type) return refused("No 'type' property.", '');
  if (type !== 'RESTRequest') return refused('Unknown request type.', '');
  if (!rawUri) return refused("Empty or missing 'uri' property.", '');
  if (!HTTP_METHODS.has(method)) return refused("Unknown or missing 'method' property.", uri);
  if (!list.every(isNameValue)) return refused("Unable to parse 'query_strings' array.", uri);

  const request = (body: Record<string, unknown> | undefined): RequestFrame => ({ kind: 'request', transactionId, requestId, method, uri, query, body });
  const rawBody = str(f.message_body);
  if (!rawBody) return request(undefined);
  const contentType = str(f.content_type);
  if (!contentType) return refused("No 'content_type' for 'message_body'.", uri);
  // Content types match exactly ("application/json; charset=utf-8" is unknown).
  // ast_http_parse_post_form turns any non-empty text into variables, so Asterisk's
  // "Unable to parse 'message_body' as 'application/x-www-form-urlencoded'." never comes.
  if (contentType === 'application/x-www-form-urlencoded') return request(Object.fromEntries(new URLSearchParams(rawBody)));
  if (contentType !== 'application/json') return refused('Unknown content type.', uri);
  const body = loadJson(rawBody);
  if (!body) return refused("Unable to parse 'message_body' as 'application/json'.", uri);
  return request(Array.isArray(body) ? undefined : (body as Record<string, unknown>));
}

/**
 * The RESTResponse frame (send_rest_response, or session_read's for a frame that is not
 * JSON): ids and uri as given, the body as a JSON string, none on a 204 or without a body.
 */
export function responseFrame(
  to: { transactionId: string; requestId: string; uri: string },
  out: RestResponse,
  application: string,
  asteriskId: string,
  reason: string = reasonPhrase(out.status),
): string {
  const withBody = out.status !== 204 && out.body !== undefined;
  return JSON.stringify({
    type: 'RESTResponse',
    transaction_id: to.transactionId,
    request_id: to.requestId,
    status_code: out.status,
    reason_phrase: reason,
    uri: to.uri,
    ...(withBody ? { content_type: 'application/json', message_body: JSON.stringify(out.body) } : {}),
    application,
    timestamp: asteriskTimestamp(),
    asterisk_id: asteriskId,
  });
}

/**
 * The REST requests of one events socket. Asterisk reads them on the socket's own thread
 * and answers each before it reads the next: one at a time, in order, a failed one not
 * stopping the next; a frame refused with a 400 takes its turn like any request. Requests
 * still waiting when the socket goes are never carried out (nor answered, nor logged).
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
    if (isBinary) return; // session_read ignores every opcode but text, without an answer
    const frame = readRequestFrame(String(data));
    this.last = this.last
      .then(() => this.carryOut(frame))
      .catch((err: unknown) => console.error('[ari-emulator] WebSocket REST request failed:', err));
  }

  private carryOut(frame: RequestFrame | RefusedFrame): Promise<void> {
    if (this.ws.readyState !== WebSocket.OPEN) return Promise.resolve(); // the socket went before its turn
    if (frame.kind === 'refused') {
      // Answered on the spot, past every injection; logged like HTTP's refused requests.
      const out: RestResponse = { status: 400, ...(frame.message === undefined ? {} : { body: { message: frame.message } }) };
      const answer = (o: RestResponse): Promise<void> =>
        this.send(responseFrame(frame, o, this.application, this.asteriskId, frame.reasonPhrase));
      return this.pipeline.refuse({ ...frame.logged, body: undefined, via: 'websocket' }, out, answer);
    }
    const answer = (out: RestResponse): Promise<void> => this.send(responseFrame(frame, out, this.application, this.asteriskId));
    const req: IncomingRequest = { method: frame.method, path: `/${frame.uri}`, query: frame.query, body: frame.body, via: 'websocket' };
    // Recorded: the uri is relative to /ari; with a leading slash Asterisk finds no method.
    if (frame.uri.startsWith('/')) return this.pipeline.refuse(req, { status: 405, body: { message: 'Invalid method' } }, answer);
    return this.pipeline.run(req, answer);
  }

  /** Resolves once the frame was handed to the socket; at once for a socket gone (that answer is lost). */
  private send(text: string): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState !== WebSocket.OPEN) return resolve();
      this.ws.send(text, () => resolve());
    });
  }
}
