// What the typed REST client needs of a way to reach Asterisk: one request
// in, its status and decoded body out. Two carry it: HTTP (http-transport.ts)
// and the events WebSocket (ws-rest.ts, Asterisk 22.4+).

export interface RawRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Below /ari, with its leading slash: `/channels/abc/answer`. */
  path: string;
  query: Record<string, string> | undefined;
  /** Sent as JSON. */
  body: unknown;
}

export interface RawResponse {
  status: number;
  reason: string;
  /** The decoded JSON body; undefined for 204 or an empty body; the text when it is not JSON. */
  data: unknown;
}

/** The request never got an answer: it timed out, or the connection failed. Asterisk may have carried it out. */
export class TransportFailure extends Error {
  override readonly name = 'TransportFailure';

  constructor(
    readonly kind: 'timeout' | 'network',
    /** A code or reason safe to log (never the credentials). */
    readonly detail: string,
  ) {
    super(`${kind}: ${detail}`);
  }
}

export interface AriTransport {
  /** Rejects with a TransportFailure only. */
  send(request: RawRequest): Promise<RawResponse>;
}
