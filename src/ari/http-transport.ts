// ARI REST over HTTP: every Asterisk has it, and it is the fallback when the
// events WebSocket cannot carry requests (before Asterisk 22.4, or down).
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import axios, { type AxiosInstance } from 'axios';
import { TransportFailure, type AriTransport, type RawRequest, type RawResponse } from './transport.js';

export interface HttpTransportOptions {
  /** Asterisk's HTTP base URL, without /ari. */
  url: string;
  username: string;
  password: string;
  timeoutMs: number;
}

/**
 * Connections to Asterisk at most; further requests wait for a free one.
 * Node's default agent opens one per concurrent request and keeps only 256
 * idle: hundreds of transfers at once (ringback goes over HTTP) opened and
 * closed thousands of connections, whose setup cost more CPU than the wait
 * (BENCHMARKS.md, blind transfers at 500 at once). Asterisk's HTTP server
 * takes 100 sessions by default (http.conf sessionlimit), the events socket
 * among them.
 */
const MAX_CONNECTIONS = 64;

export class HttpTransport implements AriTransport {
  private readonly http: AxiosInstance;

  constructor(options: HttpTransportOptions) {
    this.http = axios.create({
      baseURL: `${options.url}/ari`,
      timeout: options.timeoutMs,
      auth: { username: options.username, password: options.password },
      // Statuses are the client's to interpret; axios must not throw its own errors.
      validateStatus: () => true,
      // ARI answers 204 with no body; anything else is JSON.
      responseType: 'json',
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets: MAX_CONNECTIONS }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: MAX_CONNECTIONS }),
    });
  }

  async send(request: RawRequest): Promise<RawResponse> {
    try {
      const res = await this.http.request({ method: request.method, url: request.path, params: request.query, data: request.body });
      return { status: res.status, reason: res.statusText ?? '', data: res.status === 204 || res.data === '' ? undefined : res.data };
    } catch (err) {
      throw transportFailure(err);
    }
  }
}

// Only the code and reason survive: axios errors carry the request config,
// which holds the credentials.
function transportFailure(err: unknown): TransportFailure {
  if (axios.isAxiosError(err)) {
    const timedOut = err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT';
    return new TransportFailure(timedOut ? 'timeout' : 'network', err.code ?? err.message);
  }
  return new TransportFailure('network', err instanceof Error ? err.message : String(err));
}
