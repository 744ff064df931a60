// Thin typed client for the ARI REST operations this service uses.
// One method per operation; each failure becomes an AriError naming the
// operation. Credentials travel in the Authorization header only.
import axios, { type AxiosInstance, type Method } from 'axios';
import { AriError } from './errors.js';
import type { Bridge, Channel, TransferProgressState } from './models.js';

export interface AriRestOptions {
  /** Asterisk's HTTP base URL, without /ari. */
  url: string;
  username: string;
  password: string;
  timeoutMs: number;
  /** Told about every request once it has ended; must not throw (what it throws is ignored). */
  observer?: AriRequestObserver;
}

/** How one request ended: its HTTP status, or the transport failure. */
export type AriRequestOutcome = number | 'timeout' | 'network';

export interface AriRequestRecord {
  /** The operation, e.g. `channels.transferProgress`. */
  operation: string;
  outcome: AriRequestOutcome;
  durationMs: number;
}

export type AriRequestObserver = (record: AriRequestRecord) => void;

export interface OriginateParams {
  channelId: string;
  endpoint: string;
  app: string;
  appArgs?: string;
  callerId?: string;
  timeoutSec?: number;
  variables?: Record<string, string>;
  /** Channel id of the channel that caused this call (for linkedid, CDRs). */
  originator?: string;
}

export interface CreateBridgeParams {
  bridgeId: string;
  type?: string;
  name?: string;
}

type Query = Record<string, string | number | undefined>;

export class AriRestClient {
  private readonly http: AxiosInstance;
  private readonly observer: AriRequestObserver | undefined;

  constructor(options: AriRestOptions) {
    this.observer = options.observer;
    this.http = axios.create({
      baseURL: `${options.url}/ari`,
      timeout: options.timeoutMs,
      auth: { username: options.username, password: options.password },
      // Statuses are ours to interpret; axios must not throw its own errors.
      validateStatus: () => true,
      // ARI answers 204 with no body; anything else is JSON.
      responseType: 'json',
      // Keep-alive is Node's default agent behaviour since Node 19.
    });
  }

  // ---- channels ----
  listChannels(): Promise<Channel[]> {
    return this.call('channels.list', 'GET', '/channels');
  }
  getChannel(channelId: string): Promise<Channel> {
    return this.call('channels.get', 'GET', `/channels/${enc(channelId)}`);
  }
  async getChannelVariable(channelId: string, variable: string): Promise<string> {
    const res = await this.call<{ value: string }>('channels.getVariable', 'GET', `/channels/${enc(channelId)}/variable`, {
      variable,
    });
    return res.value;
  }
  setChannelVariable(channelId: string, variable: string, value: string): Promise<void> {
    return this.call('channels.setVariable', 'POST', `/channels/${enc(channelId)}/variable`, { variable, value });
  }
  answer(channelId: string): Promise<void> {
    return this.call('channels.answer', 'POST', `/channels/${enc(channelId)}/answer`);
  }
  hangup(channelId: string, reason = 'normal'): Promise<void> {
    return this.call('channels.hangup', 'DELETE', `/channels/${enc(channelId)}`, { reason });
  }
  startRinging(channelId: string): Promise<void> {
    return this.call('channels.ring', 'POST', `/channels/${enc(channelId)}/ring`);
  }
  stopRinging(channelId: string): Promise<void> {
    return this.call('channels.ringStop', 'DELETE', `/channels/${enc(channelId)}/ring`);
  }
  startMoh(channelId: string, mohClass?: string): Promise<void> {
    return this.call('channels.startMoh', 'POST', `/channels/${enc(channelId)}/moh`, { mohClass });
  }
  stopMoh(channelId: string): Promise<void> {
    return this.call('channels.stopMoh', 'DELETE', `/channels/${enc(channelId)}/moh`);
  }
  /** Originates with an id chosen by us, so StasisStart cannot race the response. */
  originate(p: OriginateParams): Promise<Channel> {
    const query: Query = {
      endpoint: p.endpoint,
      app: p.app,
      appArgs: p.appArgs,
      callerId: p.callerId,
      timeout: p.timeoutSec,
      originator: p.originator,
    };
    const body = p.variables ? { variables: p.variables } : undefined;
    return this.call('channels.originate', 'POST', `/channels/${enc(p.channelId)}`, query, body);
  }
  transferProgress(channelId: string, state: TransferProgressState): Promise<void> {
    return this.call('channels.transferProgress', 'POST', `/channels/${enc(channelId)}/transfer_progress`, {
      states: state,
    });
  }

  // ---- bridges ----
  listBridges(): Promise<Bridge[]> {
    return this.call('bridges.list', 'GET', '/bridges');
  }
  getBridge(bridgeId: string): Promise<Bridge> {
    return this.call('bridges.get', 'GET', `/bridges/${enc(bridgeId)}`);
  }
  createBridge(p: CreateBridgeParams): Promise<Bridge> {
    return this.call('bridges.create', 'POST', `/bridges/${enc(p.bridgeId)}`, { type: p.type ?? 'mixing', name: p.name });
  }
  destroyBridge(bridgeId: string): Promise<void> {
    return this.call('bridges.destroy', 'DELETE', `/bridges/${enc(bridgeId)}`);
  }
  /** Moves the channel out of any other Stasis bridge it is in (res/stasis/control.c). */
  /** One request for several channels: ARI takes a comma-separated list. */
  addChannel(bridgeId: string, channelId: string | string[]): Promise<void> {
    const channel = Array.isArray(channelId) ? channelId.join(',') : channelId;
    return this.call('bridges.addChannel', 'POST', `/bridges/${enc(bridgeId)}/addChannel`, { channel });
  }
  removeChannel(bridgeId: string, channelId: string): Promise<void> {
    return this.call('bridges.removeChannel', 'POST', `/bridges/${enc(bridgeId)}/removeChannel`, { channel: channelId });
  }
  startBridgeMoh(bridgeId: string, mohClass?: string): Promise<void> {
    return this.call('bridges.startMoh', 'POST', `/bridges/${enc(bridgeId)}/moh`, { mohClass });
  }
  stopBridgeMoh(bridgeId: string): Promise<void> {
    return this.call('bridges.stopMoh', 'DELETE', `/bridges/${enc(bridgeId)}/moh`);
  }

  private async call<T>(operation: string, method: Method, path: string, query?: Query, body?: unknown): Promise<T> {
    const started = performance.now();
    let res;
    try {
      res = await this.http.request({ method, url: path, params: definedOnly(query), data: body });
    } catch (err) {
      const error = transportError(operation, err);
      this.report(operation, error.kind === 'timeout' ? 'timeout' : 'network', started);
      throw error;
    }
    this.report(operation, res.status, started);
    if (res.status >= 200 && res.status < 300) return (res.status === 204 ? undefined : res.data) as T;
    throw new AriError(operation, 'http', res.status, asteriskMessage(res.data) ?? res.statusText ?? 'error');
  }

  private report(operation: string, outcome: AriRequestOutcome, started: number): void {
    if (!this.observer) return;
    try {
      this.observer({ operation, outcome, durationMs: performance.now() - started });
    } catch {
      // Metrics must never fail a request.
    }
  }
}

function enc(id: string): string {
  return encodeURIComponent(id);
}

function definedOnly(query: Query | undefined): Query | undefined {
  if (!query) return undefined;
  return Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined));
}

function asteriskMessage(data: unknown): string | undefined {
  if (data && typeof data === 'object' && 'message' in data && typeof data.message === 'string') return data.message;
  if (typeof data === 'string' && data.length > 0) return data.slice(0, 200);
  return undefined;
}

// Only the code and reason survive: axios errors carry the request config,
// which holds the credentials.
function transportError(operation: string, err: unknown): AriError {
  if (axios.isAxiosError(err)) {
    const timedOut = err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT';
    return new AriError(operation, timedOut ? 'timeout' : 'network', undefined, err.code ?? err.message);
  }
  return new AriError(operation, 'network', undefined, err instanceof Error ? err.message : String(err));
}
