// Thin typed client for the ARI REST operations this service uses.
// One method per operation; each failure becomes an AriError naming the
// operation. Requests go over the events WebSocket when Asterisk takes them
// there (ws-rest.ts), else over HTTP; credentials travel in the HTTP
// Authorization header only.
import { AriError } from './errors.js';
import { HttpTransport } from './http-transport.js';
import type { Bridge, Channel, TransferProgressState } from './models.js';
import { TransportFailure, type RawRequest } from './transport.js';
import type { WebSocketRest } from './ws-rest.js';

export interface AriRestOptions {
  /** Asterisk's HTTP base URL, without /ari. */
  url: string;
  username: string;
  password: string;
  timeoutMs: number;
  /** Told about every request once it has ended; must not throw (what it throws is ignored). */
  observer?: AriRequestObserver;
  /** The events connection's REST channel, used whenever it is available. */
  webSocket?: WebSocketRest;
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

export interface AddChannelOptions {
  /** Asterisk sends no connected-line update for this join (ARI's inhibitConnectedLineUpdates). */
  inhibitConnectedLineUpdates?: boolean;
}

type Query = Record<string, string | number | undefined>;

export class AriRestClient {
  private readonly http: HttpTransport;
  private readonly webSocket: WebSocketRest | undefined;
  private readonly observer: AriRequestObserver | undefined;
  private viaHttp: AriRestClient | undefined;

  constructor(
    private readonly options: AriRestOptions,
    http?: HttpTransport,
  ) {
    this.observer = options.observer;
    this.webSocket = options.webSocket;
    this.http = http ?? new HttpTransport(options);
  }

  /**
   * The same client, always over HTTP: for requests nobody waits on (music
   * and ringback), which must not queue on the events socket ahead of a
   * transfer's next step (Asterisk takes that socket's requests one at a
   * time), nor behind a slow one.
   */
  overHttp(): AriRestClient {
    if (!this.webSocket) return this;
    // Sharing this client's HTTP connections.
    this.viaHttp ??= new AriRestClient({ ...this.options, webSocket: undefined }, this.http);
    return this.viaHttp;
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
  /**
   * Sends the channel elsewhere within its technology: on an answered PJSIP
   * channel a REFER to its far end (what follows PJSIP/ is an endpoint name
   * or the Refer-To URI). 204 at once; ARI never tells how the REFER went.
   */
  redirect(channelId: string, endpoint: string): Promise<void> {
    return this.call('channels.redirect', 'POST', `/channels/${enc(channelId)}/redirect`, { endpoint });
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
  /**
   * Moves the channel out of any other Stasis bridge it is in (res/stasis/control.c).
   * One request for several channels: ARI takes a comma-separated list.
   * inhibitConnectedLineUpdates: the join sends the phones no connected-line update.
   */
  addChannel(bridgeId: string, channelId: string | string[], options: AddChannelOptions = {}): Promise<void> {
    const channel = Array.isArray(channelId) ? channelId.join(',') : channelId;
    return this.call('bridges.addChannel', 'POST', `/bridges/${enc(bridgeId)}/addChannel`, {
      channel,
      inhibitConnectedLineUpdates: options.inhibitConnectedLineUpdates ? 'true' : undefined,
    });
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

  private async call<T>(operation: string, method: RawRequest['method'], path: string, query?: Query, body?: unknown): Promise<T> {
    const started = performance.now();
    const transport = this.webSocket?.available ? this.webSocket : this.http;
    let res;
    try {
      res = await transport.send({ method, path, query: definedOnly(query), body });
    } catch (err) {
      const failure = err instanceof TransportFailure ? err : new TransportFailure('network', err instanceof Error ? err.message : String(err));
      this.report(operation, failure.kind, started);
      throw new AriError(operation, failure.kind, undefined, failure.detail);
    }
    this.report(operation, res.status, started);
    if (res.status >= 200 && res.status < 300) return res.data as T;
    throw new AriError(operation, 'http', res.status, asteriskMessage(res.data) ?? (res.reason || 'error'));
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

function definedOnly(query: Query | undefined): Record<string, string> | undefined {
  if (!query) return undefined;
  return Object.fromEntries(Object.entries(query).flatMap(([k, v]) => (v === undefined ? [] : [[k, String(v)]])));
}

function asteriskMessage(data: unknown): string | undefined {
  if (data && typeof data === 'object' && 'message' in data && typeof data.message === 'string') return data.message;
  if (typeof data === 'string' && data.length > 0) return data.slice(0, 200);
  return undefined;
}
