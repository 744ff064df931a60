// The ARI REST resources the emulator implements, with Asterisk's status codes and
// messages (res/ari/resource_channels.c, resource_bridges.c, res_ari.c; api-docs).

import { randomUUID } from 'node:crypto';
import type { TransferProgressState } from '../../src/ari/models.js';
import type { Dialer, OriginateParams } from './dialing.js';
import type { Redirects } from './redirects.js';
import type { AriState } from './state.js';
import { TRANSFER_STATES, type TransferManager } from './transfers.js';
import type { BridgeRecord, ChannelRecord } from './types.js';
import { readChannelVariable, writeIdentityFunction } from './variables.js';
import { AriError, HANGUP_REASONS, asteriskTimestamp } from './util.js';

export interface RestRequest {
  method: string;
  /** Path below /ari, e.g. `/channels/abc/answer`. */
  path: string;
  query: Record<string, string>;
  /** Parsed JSON body (object) or form fields; undefined without a body. */
  body: Record<string, unknown> | undefined;
  /** The order mode drew "response first" for this request: what Asterisk finishes after answering happens after the response. */
  responseFirst?: boolean;
}

export interface RestResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** The channel's later commands wait for this (res_stasis runs a channel's commands one at a time: redirect waits for the REFER's outcome). */
  holdsQueueUntil?: Promise<void>;
}

type Params = Record<string, string>;
type Handler = (req: RestRequest, params: Params) => RestResponse;

interface Route {
  method: string;
  segments: string[];
  handler?: Handler;
}

export interface RestContext {
  state: AriState;
  dialer: Dialer;
  transfers: TransferManager;
  redirects: Redirects;
  asteriskId: string;
  systemName: string;
  startedAt: string;
  /** AriEmulatorOptions.asyncHangup. */
  asyncHangup: boolean;
}

const ok = (body: unknown): RestResponse => ({ status: 200, body });
const noContent = (): RestResponse => ({ status: 204 });

/** Resources of the real ARI the emulator does not implement: 501 instead of a misleading 404. */
const NOT_EMULATED: [string, string][] = [
  ['POST', '/channels/create'],
  ['POST', '/channels/externalMedia'],
  ['POST', '/channels/:channelId/continue'],
  ['POST', '/channels/:channelId/move'],
  ['POST', '/channels/:channelId/progress'],
  ['POST', '/channels/:channelId/dtmf'],
  ['POST', '/channels/:channelId/mute'],
  ['DELETE', '/channels/:channelId/mute'],
  ['POST', '/channels/:channelId/hold'],
  ['DELETE', '/channels/:channelId/hold'],
  ['POST', '/channels/:channelId/silence'],
  ['DELETE', '/channels/:channelId/silence'],
  ['POST', '/channels/:channelId/play'],
  ['POST', '/channels/:channelId/play/:playbackId'],
  ['POST', '/channels/:channelId/record'],
  ['GET', '/channels/:channelId/variables'],
  ['POST', '/channels/:channelId/variables'],
  ['POST', '/channels/:channelId/snoop'],
  ['POST', '/channels/:channelId/snoop/:snoopId'],
  ['POST', '/channels/:channelId/dial'],
  ['GET', '/channels/:channelId/rtp_statistics'],
  ['GET', '/bridges/:bridgeId/variable'],
  ['POST', '/bridges/:bridgeId/variable'],
  ['GET', '/bridges/:bridgeId/variables'],
  ['POST', '/bridges/:bridgeId/variables'],
  ['POST', '/bridges/:bridgeId/videoSource/:channelId'],
  ['DELETE', '/bridges/:bridgeId/videoSource'],
  ['POST', '/bridges/:bridgeId/play'],
  ['POST', '/bridges/:bridgeId/play/:playbackId'],
  ['POST', '/bridges/:bridgeId/record'],
  ['GET', '/events'],
  ['POST', '/events/user/:eventName'],
  ['POST', '/events/claim'],
  ['GET', '/applications'],
  ['GET', '/applications/:applicationName'],
  ['GET', '/endpoints'],
  ['GET', '/asterisk/variable'],
  ['POST', '/asterisk/variable'],
  ['GET', '/asterisk/modules'],
];

export class RestRouter {
  private readonly routes: Route[] = [];

  constructor(private readonly ctx: RestContext) {
    const r = (method: string, pattern: string, handler: Handler): void => {
      this.routes.push({ method, segments: pattern.split('/').filter(Boolean), handler });
    };
    const c = this.ctx;

    r('GET', '/asterisk/info', (req) => ok(this.asteriskInfo(req.query.only)));
    r('GET', '/asterisk/ping', () => ok({ asterisk_id: c.asteriskId, ping: 'pong', timestamp: asteriskTimestamp() }));

    // ---- channels ----
    r('GET', '/channels', () => ok([...c.state.channels.values()].map((ch) => c.state.snap(ch))));
    r('POST', '/channels', (req) => this.originate(req, param(req, 'channelId')));
    r('GET', '/channels/:channelId', (_req, p) => {
      const ch = c.state.channels.get(p.channelId ?? '');
      if (!ch) throw new AriError(404, 'Channel not found');
      return ok(c.state.snap(ch));
    });
    r('POST', '/channels/:channelId', (req, p) => this.originate(req, p.channelId));
    r('DELETE', '/channels/:channelId', (req, p) => this.hangup(req, p.channelId ?? ''));
    r('POST', '/channels/:channelId/answer', (_req, p) => {
      const ch = this.control(p.channelId);
      this.stateValid(ch);
      c.state.answer(ch);
      return noContent();
    });
    r('POST', '/channels/:channelId/ring', (_req, p) => {
      const ch = this.control(p.channelId);
      this.stateValid(ch);
      ch.ringing = true;
      return noContent();
    });
    r('DELETE', '/channels/:channelId/ring', (_req, p) => {
      const ch = this.control(p.channelId);
      this.stateValid(ch);
      ch.ringing = false;
      return noContent();
    });
    r('POST', '/channels/:channelId/moh', (req, p) => {
      const ch = this.control(p.channelId);
      this.stateValid(ch);
      c.state.startMoh(ch, param(req, 'mohClass') || 'default', 'ari');
      return noContent();
    });
    r('DELETE', '/channels/:channelId/moh', (_req, p) => {
      const ch = this.control(p.channelId);
      this.stateValid(ch);
      c.state.stopMoh(ch);
      return noContent();
    });
    r('GET', '/channels/:channelId/variable', (req, p) => this.getVariable(req, p.channelId ?? ''));
    r('POST', '/channels/:channelId/variable', (req, p) => {
      const variable = param(req, 'variable');
      if (!variable) throw new AriError(400, 'Variable name is required');
      const ch = this.control(p.channelId);
      const value = param(req, 'value') ?? '';
      const fn = writeIdentityFunction(variable, value);
      if (fn?.kind === 'connected') c.state.updateConnectedLine(ch, fn.id, fn.indicate);
      else if (fn?.kind === 'caller') ch.caller = fn.id; // ChannelCallerId: not recorded, and nobody listens for it
      // Other function writes (e.g. PJSIP_TRANSFER_HANDLING()=ari-only) are accepted and have no effect here.
      else if (!variable.trim().endsWith(')')) ch.variables.set(variable.trim(), value);
      return noContent();
    });
    r('POST', '/channels/:channelId/redirect', (req, p) => this.redirect(req, p.channelId));
    r('POST', '/channels/:channelId/transfer_progress', (req, p) => {
      const ch = this.control(p.channelId);
      const states = param(req, 'states');
      // blind-unavailable: `states=bogus` → 400 {"message":"Invalid states value"}. Decided: an
      // empty or missing value gets the same answer (not recorded).
      if (!states || !(TRANSFER_STATES as readonly string[]).includes(states)) {
        throw new AriError(400, 'Invalid states value');
      }
      c.transfers.transferProgress(ch.id, states as TransferProgressState);
      return noContent();
    });

    // ---- bridges ----
    r('GET', '/bridges', () => ok([...c.state.bridges.values()].map((b) => c.state.bsnap(b))));
    r('POST', '/bridges', (req) => this.createBridge(req, param(req, 'bridgeId'), false));
    r('POST', '/bridges/:bridgeId', (req, p) => this.createBridge(req, p.bridgeId, true));
    r('GET', '/bridges/:bridgeId', (_req, p) => {
      const b = c.state.bridges.get(p.bridgeId ?? '');
      if (!b) throw new AriError(404, 'Bridge not found');
      return ok(c.state.bsnap(b));
    });
    r('DELETE', '/bridges/:bridgeId', (_req, p) => {
      c.state.destroyBridge(this.bridge(p.bridgeId));
      return noContent();
    });
    r('POST', '/bridges/:bridgeId/addChannel', (req, p) => {
      const b = this.bridge(p.bridgeId);
      const inhibit = param(req, 'inhibitConnectedLineUpdates') === 'true';
      for (const ch of this.channelList(req)) c.state.addToBridge(b, ch, inhibit);
      return noContent();
    });
    r('POST', '/bridges/:bridgeId/removeChannel', (req, p) => {
      const b = this.bridge(p.bridgeId);
      const list = this.channelList(req);
      for (const ch of list) if (ch.bridgeId !== b.id) throw new AriError(422, 'Channel not in this bridge');
      for (const ch of list) c.state.removeFromBridge(b, ch);
      return noContent();
    });
    r('POST', '/bridges/:bridgeId/moh', (req, p) => {
      const b = this.bridge(p.bridgeId);
      // The music comes from an internal announcer channel: no events, not in `channels`,
      // but a member all the same (bridge-technology trace: softmix while it plays).
      c.state.setBridgeMoh(b, param(req, 'mohClass') || 'default');
      return noContent();
    });
    r('DELETE', '/bridges/:bridgeId/moh', (_req, p) => {
      const b = this.bridge(p.bridgeId);
      if (!b.mohPlaying) throw new AriError(409, "Bridge isn't playing music");
      c.state.setBridgeMoh(b, undefined);
      return noContent();
    });

    for (const [method, pattern] of NOT_EMULATED) {
      this.routes.push({ method, segments: pattern.split('/').filter(Boolean) });
    }
  }

  /** Routes like ast_ari_invoke(): 404 "Resource not found", 405 "Invalid method" with Allow. */
  handle(req: RestRequest): RestResponse {
    const segments = req.path.split('/').filter(Boolean).map(safeDecode);
    const matching = this.routes
      .map((route) => ({ route, params: match(route.segments, segments) }))
      .filter((m): m is { route: Route; params: Params } => m.params !== undefined);
    if (matching.length === 0) return { status: 404, body: { message: 'Resource not found' } };
    // Literal segments beat wildcards (`/channels/create` before `/channels/{channelId}`).
    matching.sort((a, b) => wildcards(a.route) - wildcards(b.route));
    const best = matching.filter((m) => wildcards(m.route) === wildcards(matching[0]!.route));
    const hit = best.find((m) => m.route.method === req.method);
    if (!hit) {
      const allow = ['OPTIONS', ...new Set(best.map((m) => m.route.method))].join(',');
      return { status: 405, body: { message: 'Invalid method' }, headers: { Allow: allow } };
    }
    if (!hit.route.handler) {
      return {
        status: 501,
        body: { message: `ARI emulator: ${req.method} ${req.path} is not emulated` },
      };
    }
    try {
      return hit.route.handler(req, hit.params);
    } catch (err) {
      if (err instanceof AriError) return { status: err.status, body: err.body };
      throw err;
    }
  }

  // ---- helpers mirroring Asterisk's lookups ----------------------------------

  /** find_control(): 404 unknown channel, 409 channel not in Stasis. */
  private control(channelId: string | undefined): ChannelRecord {
    const ch = this.ctx.state.channels.get(channelId ?? '');
    if (!ch) throw new AriError(404, 'Channel not found');
    if (!ch.inStasis) throw new AriError(409, 'Channel not in Stasis application');
    return ch;
  }

  /** res/ari/resource_channels.c ast_ari_channels_redirect: its checks and messages, as recorded (refer-out traces). */
  private redirect(req: RestRequest, channelId: string | undefined): RestResponse {
    const ch = this.control(channelId);
    this.stateValid(ch);
    const endpoint = param(req, 'endpoint');
    if (!endpoint) throw new AriError(400, "Required parameter 'endpoint' not provided.");
    const slash = endpoint.indexOf('/');
    if (slash <= 0) throw new AriError(422, `Endpoint parameter '${endpoint}' does not contain tech/resource`);
    const tech = endpoint.slice(0, slash);
    const resource = endpoint.slice(slash + 1);
    if (!resource) throw new AriError(422, `No resource provided in endpoint parameter '${endpoint}'`);
    if (tech.toLowerCase() !== ch.tech.toLowerCase()) {
      throw new AriError(422, `Endpoint technology '${tech}' does not match channel technology '${ch.tech}'`);
    }
    // chan_pjsip sends a 302 instead to a channel still ringing (not recorded, not emulated).
    if (ch.tech !== 'PJSIP' || ch.state !== 'Up') throw new AriError(501, 'redirect of a channel that is not an answered PJSIP channel is not emulated');
    return { status: 204, holdsQueueUntil: this.ctx.redirects.refer(ch, resource) };
  }

  /** channel_state_invalid(): Down, Rsrvd and Ringing channels are refused. */
  private stateValid(ch: ChannelRecord): void {
    if (ch.state === 'Down' || ch.state === 'Rsrvd' || ch.state === 'Ringing') {
      throw new AriError(412, 'Channel in invalid state');
    }
  }

  /** find_bridge(): 404 "Bridge not found". */
  private bridge(bridgeId: string | undefined): BridgeRecord {
    const b = this.ctx.state.bridges.get(bridgeId ?? '');
    if (!b) throw new AriError(404, 'Bridge not found');
    return b;
  }

  /** control_list_create(): `channel` is a comma list; 400 missing/unknown, 422 not in Stasis. */
  private channelList(req: RestRequest): ChannelRecord[] {
    const ids = (param(req, 'channel') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    if (ids.length === 0) throw new AriError(400, 'Missing parameter channel');
    return ids.map((id) => {
      const ch = this.ctx.state.channels.get(id);
      if (!ch) throw new AriError(400, 'Channel not found');
      if (!ch.inStasis) throw new AriError(422, 'Channel not in Stasis application');
      return ch;
    });
  }

  private originate(req: RestRequest, channelId: string | undefined): RestResponse {
    const timeoutRaw = param(req, 'timeout');
    const variables = this.variablesFromBody(req.body);
    const p: OriginateParams = {
      endpoint: param(req, 'endpoint'),
      extension: param(req, 'extension'),
      app: param(req, 'app'),
      appArgs: param(req, 'appArgs'),
      callerId: param(req, 'callerId'),
      timeout: parseTimeout(timeoutRaw),
      channelId: channelId || undefined,
      otherChannelId: param(req, 'otherChannelId') || undefined,
      variables,
    };
    return ok(this.ctx.dialer.originate(p).snapshot);
  }

  /** `{"variables": {...}}`: only string values (json_to_ast_variables). */
  private variablesFromBody(body: Record<string, unknown> | undefined): Record<string, string> | undefined {
    const v = body?.variables;
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) {
      throw new AriError(400, "Only string values in the 'variables' object allowed");
    }
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
      if (typeof val !== 'string') throw new AriError(400, "Only string values in the 'variables' object allowed");
      out[k] = val;
    }
    return out;
  }

  private hangup(req: RestRequest, channelId: string): RestResponse {
    const ch = this.ctx.state.channels.get(channelId);
    if (!ch) throw new AriError(404, 'Channel not found');
    const reason = param(req, 'reason');
    const reasonCode = param(req, 'reason_code');
    if (reason && reasonCode) throw new AriError(400, "The reason and reason_code can't both be specified");
    let cause = 16;
    if (reasonCode) {
      if (!/^\s*-?\d+/.test(reasonCode)) throw new AriError(400, 'Invalid reason for hangup reason code provided');
      cause = Number.parseInt(reasonCode, 10);
    } else if (reason) {
      const mapped = HANGUP_REASONS[reason];
      if (mapped === undefined) throw new AriError(400, 'Invalid reason for hangup reason provided');
      cause = mapped;
    }
    // ast_softhangup(AST_SOFTHANGUP_EXPLICIT): ChannelHangupRequest {cause 32, soft true}, then the
    // channel's thread hangs it up. Recorded: often only after the 204. With asyncHangup, a
    // response-first hangup does the same (state.softHangup); otherwise it is done before the 204.
    if (req.responseFirst && this.ctx.asyncHangup) this.ctx.state.softHangup(ch, cause);
    else this.ctx.state.hangup(ch, { by: 'ari', request: { cause: 32, soft: true }, cause });
    return noContent();
  }

  private getVariable(req: RestRequest, channelId: string): RestResponse {
    const variable = param(req, 'variable');
    if (!variable) throw new AriError(400, 'Variable name is required');
    const ch = this.ctx.state.channels.get(channelId);
    if (!ch) throw new AriError(404, 'Provided channel was not found');
    const r = readChannelVariable(ch, variable);
    if (r.ok) return ok({ value: r.value });
    if (r.kind === 'function-error') throw new AriError(500, 'Unable to read provided function');
    throw new AriError(404, 'Provided variable was not found');
  }

  private createBridge(req: RestRequest, bridgeId: string | undefined, withId: boolean): RestResponse {
    const s = this.ctx.state;
    if (bridgeId && s.bridges.has(bridgeId)) throw new AriError(409, `Bridge with id '${bridgeId}' already exists`);
    const type = parseBridgeType(param(req, 'type'));
    const flags = (param(req, 'type') ?? '').split(',').map((f) => f.trim());
    if (!type) {
      throw new AriError(
        500,
        withId ? 'Unable to create bridge' : `Unable to create bridge. Possible duplicate bridge id '${bridgeId ?? '(null)'}'`,
      );
    }
    const noNative = flags.includes('dtmf_events') || flags.includes('proxy_media');
    const b = s.createBridge(bridgeId || randomUUID(), param(req, 'name') ?? '', type, noNative);
    return ok(s.bsnap(b));
  }

  private asteriskInfo(only: string | undefined): Record<string, unknown> {
    const c = this.ctx;
    // Shape of GET /asterisk/info in the traces' rest.jsonl.
    const all: Record<string, unknown> = {
      build: { os: 'Linux', kernel: 'emulated', machine: 'x86_64', options: '', date: c.startedAt, user: 'emulator' },
      system: { version: 'ari-emulator', entity_id: c.asteriskId },
      config: { name: c.systemName, default_language: 'en', setid: { user: '', group: '' } },
      status: { startup_time: c.startedAt, last_reload_time: c.startedAt },
    };
    if (!only) return all;
    const wanted = only.split(',').map((s) => s.trim());
    return Object.fromEntries(Object.entries(all).filter(([k]) => wanted.includes(k)));
  }
}

/** Query first, then the JSON/form body (ARI reads parameters from both). */
export function param(req: RestRequest, name: string): string | undefined {
  const q = req.query[name];
  if (q !== undefined) return q;
  const b = req.body?.[name];
  if (typeof b === 'string') return b;
  if (typeof b === 'number' || typeof b === 'boolean') return String(b);
  return undefined;
}

/** stasis_app_bridge_create(): comma list of capabilities; holding wins over mixing. */
function parseBridgeType(type: string | undefined): 'mixing' | 'holding' | undefined {
  if (!type) return 'mixing';
  const known = new Set(['mixing', 'holding', 'dtmf_events', 'proxy_media', 'video_sfu', 'video_single', 'sdp_label']);
  const parts = type.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.some((p) => !known.has(p))) return undefined;
  return parts.includes('holding') ? 'holding' : 'mixing';
}

/** Generated ARI code reads ints with atoi(): junk is 0, which means the default (30 s). */
function parseTimeout(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number.parseInt(raw, 10);
  return Number.isNaN(n) ? 0 : n;
}

function match(pattern: string[], segments: string[]): Params | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: Params = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i] ?? '';
    const s = segments[i] ?? '';
    if (p.startsWith(':')) params[p.slice(1)] = s;
    else if (p !== s) return undefined;
  }
  return params;
}

function wildcards(route: Route): number {
  return route.segments.filter((s) => s.startsWith(':')).length;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
