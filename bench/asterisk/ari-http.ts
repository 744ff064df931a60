// ARI's REST interface on Node's fetch (undici, keep-alive by default), for
// the plain application and for the benchmark's own look at Asterisk.
// Every request has a timeout: a benchmark must never hang on one.

const REQUEST_TIMEOUT_MS = 5000;

export class AriHttp {
  readonly authorization: string;
  private readonly base: string;

  constructor(url: string, username: string, password: string) {
    this.base = `${url.replace(/\/+$/, '')}/ari`;
    this.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  }

  /** The events WebSocket of Stasis application `app`. */
  eventsUrl(app: string): string {
    return `${this.base.replace(/^http/, 'ws')}/events?app=${encodeURIComponent(app)}`;
  }

  get<T>(path: string, query?: Record<string, string>): Promise<T> {
    return this.request('GET', path, query) as Promise<T>;
  }

  post(path: string, query?: Record<string, string>): Promise<unknown> {
    return this.request('POST', path, query);
  }

  delete(path: string, query?: Record<string, string>): Promise<unknown> {
    return this.request('DELETE', path, query);
  }

  /** The parsed JSON answer (undefined for 204); a status from 300 up throws, with `status` on the error. */
  async request(method: string, path: string, query?: Record<string, string>): Promise<unknown> {
    const qs = query ? `?${new URLSearchParams(query).toString()}` : '';
    const res = await fetch(`${this.base}${path}${qs}`, {
      method,
      headers: { Authorization: this.authorization },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    if (res.status >= 300) throw Object.assign(new Error(`${method} ${path} → ${res.status} ${text.slice(0, 200)}`), { status: res.status });
    return text ? (JSON.parse(text) as unknown) : undefined;
  }
}
