// Calls coming in from phones (the dialplan sends them to Stasis) and calls
// Asterisk places for `POST /channels` (originate), with the far end's behaviour.

import type { Channel } from '../../src/ari/models.js';
import type { AriState } from './state.js';
import type { ChannelRecord, EndpointBehaviour } from './types.js';
import { AriError, parseCallerId } from './util.js';

/** AST_MAX_PUBLIC_UNIQUEID */
const MAX_UNIQUEID = 149;

export interface InboundCallOptions {
  endpoint: string;
  exten: string;
  callerName?: string;
  callId?: string;
  args?: string[];
  /** Stasis application of the dialplan (default: the emulator's app). */
  app?: string;
}

export interface OriginateParams {
  endpoint?: string;
  extension?: string;
  app?: string;
  appArgs?: string;
  callerId?: string;
  /** Seconds; Asterisk's default 30, -1 for none. */
  timeout?: number;
  channelId?: string;
  otherChannelId?: string;
  variables?: Record<string, string>;
}

export class Dialer {
  private readonly behaviours = new Map<string, EndpointBehaviour>();

  constructor(private readonly state: AriState) {}

  setEndpoint(name: string, behaviour: EndpointBehaviour): void {
    this.behaviours.set(name, behaviour);
  }

  private behaviourFor(resource: string, endpoint: string): EndpointBehaviour {
    return this.behaviours.get(resource) ?? this.behaviours.get(endpoint) ?? { kind: 'answer' };
  }

  // ---- inbound -------------------------------------------------------------

  /**
   * A phone's INVITE to `exten`. Dialplan as in the traces' harness
   * (`exten => _X.,1,NoOp(...)`, `same => n,Stasis(<app>[,args])`) or as in asterisk-config
   * (`exten => _[0-9+*#]!,1,Stasis(${ARI_APP})`), per the `inboundDialplan` option.
   * Events: ChannelCreated (Ring, protocol_id "" — the Call-ID is only set afterwards),
   * then StasisStart (Ring, protocol_id set). attended.events.jsonl lines 1-6.
   */
  inboundCall(opts: InboundCallOptions): ChannelRecord {
    const s = this.state;
    const app = opts.app ?? s.cfg.app;
    const dialog = s.newInboundDialog(opts.callId);
    const ch = s.addChannel({
      id: s.nextUniqueId(),
      name: s.nextPjsipName(opts.endpoint),
      tech: 'PJSIP',
      endpoint: opts.endpoint,
      direction: 'inbound',
      hasPbx: true,
      app,
      state: 'Ring',
      caller: s.cfg.callerIds[opts.endpoint]
        ? { ...s.cfg.callerIds[opts.endpoint]!, ...(opts.callerName !== undefined ? { name: opts.callerName } : {}) }
        : { name: opts.callerName ?? capitalize(opts.endpoint), number: opts.endpoint },
      dialplan: { context: s.cfg.context, exten: opts.exten, priority: 1, app_name: '', app_data: '' },
      dialog,
    });
    s.emitChannelCreated(ch);
    ch.protocolId = dialog.callId;
    s.noiseVarset(ch, 'SIPDOMAIN', '127.0.0.1');
    const args = opts.args ?? [];
    let priority = 1;
    if (s.cfg.inboundDialplan === 'trace-harness') {
      ch.dialplan = { ...ch.dialplan, app_name: 'NoOp', app_data: `From ${opts.endpoint} to ${opts.exten}` };
      s.noiseDialplan(ch, 'NoOp', ch.dialplan.app_data);
      priority = 2;
    }
    ch.dialplan = { ...ch.dialplan, priority, app_name: 'Stasis', app_data: [app, ...args].join(',') };
    s.noiseDialplan(ch, 'Stasis', ch.dialplan.app_data);
    if (!s.enterStasis(ch, args)) {
      // Decided (no trace): Stasis() fails for an app without a WebSocket and the
      // dialplan ends, so Asterisk hangs the call up.
      s.hangup(ch, { by: 'asterisk', request: null, cause: 16 });
    }
    return ch;
  }

  // ---- originate -----------------------------------------------------------

  /**
   * `POST /channels` / `POST /channels/{id}`; checks in the order of resource_channels.c.
   * Returns the channel and the snapshot of the 200 response, taken before dialing starts.
   */
  originate(p: OriginateParams): { channel: ChannelRecord; snapshot: Channel } {
    const s = this.state;
    if ((p.channelId && p.channelId.length > MAX_UNIQUEID) || (p.otherChannelId && p.otherChannelId.length > MAX_UNIQUEID)) {
      throw new AriError(400, `Uniqueid length exceeds maximum of ${MAX_UNIQUEID}`);
    }
    if (!p.endpoint) throw new AriError(400, 'Endpoint must be specified');
    const slash = p.endpoint.indexOf('/');
    const tech = slash > 0 ? p.endpoint.slice(0, slash) : '';
    const resource = slash > 0 ? p.endpoint.slice(slash + 1) : '';
    if (!tech || !resource) throw new AriError(400, 'Invalid endpoint specified');
    if (!p.app) {
      if (p.extension) {
        throw new AriError(501, 'ARI emulator: originate into the dialplan (extension without app) is not emulated');
      }
      throw new AriError(400, 'Application or extension must be specified');
    }
    const techUpper = tech.toUpperCase();
    if (techUpper !== 'PJSIP' && techUpper !== 'LOCAL') {
      // ast_request() fails for a technology that is not loaded: ast_dial_prerun() fails.
      throw AriError.allocationFailed();
    }
    if (techUpper === 'PJSIP') {
      const endpointName = pjsipEndpointName(resource);
      if (this.behaviourFor(resource, endpointName).kind === 'unreachable') {
        // chan_pjsip cannot create the channel (unknown endpoint / no contact):
        // ast_dial_prerun() fails and ARI answers ast_ari_response_alloc_failed().
        throw AriError.allocationFailed();
      }
    }
    if ((p.channelId && s.uniqueIdInUse(p.channelId)) || (p.otherChannelId && s.uniqueIdInUse(p.otherChannelId))) {
      throw new AriError(409, 'Channel with given unique ID already exists');
    }
    const cid = p.callerId ? parseCallerId(p.callerId) : undefined;
    const args = p.appArgs ? p.appArgs.split(',') : [];
    return techUpper === 'PJSIP'
      ? this.originatePjsip(resource, p, args, cid)
      : this.originateLocal(resource, p, args, cid);
  }

  /**
   * blind-answered 1.636-1.946: ChannelCreated (Down, protocol_id ""), Dial "",
   * ChannelStateChange Ringing, Dial RINGING, ... ChannelStateChange Up, Dial ANSWER, StasisStart (Up).
   * The 200 response already shows the Call-ID and AppDial2 (rest.jsonl).
   */
  private originatePjsip(
    resource: string,
    p: OriginateParams,
    args: string[],
    cid: { name: string; number: string } | undefined,
  ): { channel: ChannelRecord; snapshot: Channel } {
    const s = this.state;
    const endpoint = pjsipEndpointName(resource);
    const dialog = s.newOutboundDialog();
    const ch = s.addChannel({
      id: p.channelId || s.nextUniqueId(),
      name: s.nextPjsipName(endpoint),
      tech: 'PJSIP',
      endpoint,
      direction: 'outbound',
      hasPbx: false,
      app: p.app ?? s.cfg.app,
      args,
      dialog,
      dialstring: resource,
      ...(s.cfg.callerIds[endpoint] ? { caller: { ...s.cfg.callerIds[endpoint]! } } : {}),
    });
    for (const [k, v] of Object.entries(p.variables ?? {})) ch.variables.set(k, v);
    s.emitChannelCreated(ch);
    s.hub.subscribeChannel(ch.id, ch.app);
    ch.dialplan = { ...ch.dialplan, app_name: 'AppDial2', app_data: '(Outgoing Line)' };
    s.noiseDialplan(ch, 'AppDial2', '(Outgoing Line)');
    ch.protocolId = dialog.callId;
    if (cid) {
      ch.caller = { ...cid };
      ch.connected = { ...cid };
    }
    s.noiseDial(ch, resource, '');
    const snapshot = s.snap(ch);

    const behaviour = this.behaviourFor(resource, endpoint);
    const ring = (): void => {
      s.setState(ch, 'Ringing');
      s.noiseDial(ch, resource, 'RINGING');
    };
    if (behaviour.kind === 'answer' && behaviour.afterMs === 0) {
      // The dial runs on its own thread in Asterisk: StasisStart can beat the 200 response
      // (DESIGN.md). afterMs 0 makes that happen every time.
      ring();
      this.answerOriginated(ch, args, resource);
    } else {
      this.schedule(ch, 1, ring);
      this.applyBehaviour(ch, behaviour, p.timeout, args, resource);
    }
    return { channel: ch, snapshot };
  }

  /**
   * callid-local: ChannelCreated ;1 (Down) and ;2 (Ring), ;2 answers in its dialplan,
   * ChannelStateChange Up ;2 then ;1, StasisStart ;1. Only ;1 is in Stasis.
   */
  private originateLocal(
    resource: string,
    p: OriginateParams,
    args: string[],
    cid: { name: string; number: string } | undefined,
  ): { channel: ChannelRecord; snapshot: Channel } {
    const s = this.state;
    const base = s.nextLocalBase(resource);
    const at = resource.indexOf('@');
    const exten = (at >= 0 ? resource.slice(0, at) : resource).split('/')[0] ?? resource;
    const context = at >= 0 ? (resource.slice(at + 1).split('/')[0] ?? 'default') : 'default';
    const app = p.app ?? s.cfg.app;
    const dialplan = { context, exten, priority: 1, app_name: '', app_data: '' };
    const one = s.addChannel({
      id: p.channelId || s.nextUniqueId(),
      name: `${base};1`,
      tech: 'Local',
      endpoint: resource,
      direction: 'outbound',
      hasPbx: false,
      app,
      args,
      dialplan: { ...dialplan },
      localHalf: 1,
    });
    const two = s.addChannel({
      id: p.otherChannelId || s.nextUniqueId(),
      name: `${base};2`,
      tech: 'Local',
      endpoint: resource,
      direction: 'outbound',
      hasPbx: true,
      app,
      state: 'Ring',
      dialplan: { ...dialplan },
      localHalf: 2,
      localPeerId: one.id,
    });
    one.localPeerId = two.id;
    for (const [k, v] of Object.entries(p.variables ?? {})) one.variables.set(k, v);
    if (cid) {
      one.caller = { ...cid };
      one.connected = { ...cid };
    }
    // Originate subscribes the app to both halves (ast_local_get_peer in resource_channels.c).
    s.emitChannelCreated(one);
    s.emitChannelCreated(two);
    s.hub.subscribeChannel(one.id, app);
    s.hub.subscribeChannel(two.id, app);
    one.dialplan = { ...one.dialplan, app_name: 'AppDial2', app_data: '(Outgoing Line)' };
    s.noiseDialplan(one, 'AppDial2', '(Outgoing Line)');
    s.noiseDial(one, resource, '');
    const snapshot = s.snap(one);

    const behaviour = this.behaviourFor(resource, resource);
    if (behaviour.kind === 'answer') {
      // The ;2 half answers in its own dialplan right away (echo in the trace).
      this.schedule(one, behaviour.afterMs ?? 0, () => {
        two.dialplan = { ...two.dialplan, app_name: 'Answer', app_data: '' };
        s.noiseDialplan(two, 'Answer', '');
        s.setState(two, 'Up');
        this.answerOriginated(one, args, resource);
      });
    } else {
      two.dialplan = { ...two.dialplan, app_name: 'Dial', app_data: '' };
      this.schedule(one, 1, () => {
        s.setState(one, 'Ringing');
        s.noiseDial(one, resource, 'RINGING');
      });
      this.applyBehaviour(one, behaviour, p.timeout, args, resource);
    }
    return { channel: one, snapshot };
  }

  private applyBehaviour(
    ch: ChannelRecord,
    behaviour: EndpointBehaviour,
    timeoutSec: number | undefined,
    args: string[],
    dialstring: string,
  ): void {
    const s = this.state;
    switch (behaviour.kind) {
      case 'answer':
        this.schedule(ch, Math.max(2, behaviour.afterMs ?? 5), () => this.answerOriginated(ch, args, dialstring));
        break;
      case 'busy':
        this.schedule(ch, Math.max(2, behaviour.afterMs ?? 5), () => this.farEndFails(ch, 17, 486));
        break;
      case 'reject':
        this.schedule(ch, Math.max(2, behaviour.afterMs ?? 5), () => this.farEndFails(ch, 21, 603));
        break;
      case 'congestion':
        this.schedule(ch, Math.max(2, behaviour.afterMs ?? 5), () => this.farEndFails(ch, 34, 503));
        break;
      case 'unreachable':
        // Only reached for Local channels (PJSIP fails at originate): the Dial() in the
        // ;2 half finds no route and its dialplan ends.
        this.schedule(ch, 2, () => this.farEndFails(ch, 3));
        break;
      case 'no-answer':
        break;
    }
    // ast_dial global timeout: `timeout` seconds, 30 when 0/absent, none for -1.
    const t = timeoutSec === undefined || timeoutSec === 0 ? 30 : timeoutSec;
    if (t > 0) {
      this.schedule(ch, t * 1000, () => {
        if (ch.state === 'Up' || ch.hangingUp) return;
        // dial-timeout trace: ast_dial hangs the unanswered channel up directly (CANCEL to the
        // phone): no ChannelHangupRequest, no final Dial event, ChannelDestroyed 19 / 480.
        s.hangup(ch, { by: 'asterisk', request: null, cause: 19, techCause: 480 });
      });
    }
  }

  /** The far end answers (200 OK): Up, then Stasis(app,appArgs). */
  answerOriginated(ch: ChannelRecord, args: string[], dialstring: string): void {
    const s = this.state;
    if (ch.hangingUp || !s.channels.has(ch.id) || ch.inStasis) return;
    for (const t of ch.dialTimers) s.scheduler.cancel(t);
    ch.dialTimers = [];
    s.setState(ch, 'Up');
    s.noiseDial(ch, dialstring, 'ANSWER');
    if (!s.enterStasis(ch, args)) {
      // Decided (no trace): Stasis() fails for an app without a WebSocket; ast_dial then
      // hangs the answered channel up.
      s.hangup(ch, { by: 'asterisk', request: null, cause: 16 });
    }
  }

  /**
   * The far end answers a final error response `sipStatus`. chan_pjsip queues the hangup with
   * the mapped cause: ChannelHangupRequest {cause, tech_cause}, the final Dial event (BUSY,
   * NOANSWER, CONGESTION), ChannelDestroyed {cause, cause_txt, tech_cause} (dial-* traces).
   */
  farEndFails(ch: ChannelRecord, cause: number, sipStatus?: number): void {
    const s = this.state;
    if (ch.hangingUp || !s.channels.has(ch.id)) return;
    const two = ch.tech === 'Local' && ch.localPeerId ? s.channels.get(ch.localPeerId) : undefined;
    if (two) {
      // Local: the Dial() in the ;2 half's dialplan fails and its PBX ends; the unreal
      // driver passes the cause on to the ;1 half.
      s.hangup(two, { by: 'phone', request: null, cause });
      return;
    }
    const tech = sipStatus !== undefined ? { tech_cause: sipStatus } : {};
    s.hangup(ch, {
      by: 'phone',
      request: { cause, ...tech },
      cause,
      ...(sipStatus !== undefined ? { techCause: sipStatus } : {}),
      beforeDestroy: () => s.noiseDial(ch, ch.dialstring ?? ch.endpoint, dialStatusFor(cause)),
    });
  }

  /** Answer a still ringing originated channel now (test-driven far end). */
  phoneAnswers(ch: ChannelRecord): void {
    if (ch.direction !== 'outbound' || ch.state === 'Up') {
      throw new Error(`ARI emulator: ${ch.id} is not a ringing originated channel`);
    }
    if (ch.tech === 'Local' && ch.localPeerId) {
      const two = this.state.channels.get(ch.localPeerId);
      if (two) this.state.setState(two, 'Up');
    }
    this.answerOriginated(ch, ch.args, ch.dialstring ?? ch.endpoint);
  }

  private schedule(ch: ChannelRecord, ms: number, fn: () => void): void {
    ch.dialTimers.push(this.state.scheduler.after(ms, fn));
  }
}

/**
 * The final Dial event's dialstatus when the far end refuses (dial-busy, dial-rejected,
 * dial-congestion traces): 486 → BUSY, 503 → CONGESTION (chan_pjsip queues the control
 * frame), anything else (e.g. 603, cause 21) only hangs the channel up → NOANSWER.
 */
function dialStatusFor(cause: number): string {
  if (cause === 17) return 'BUSY';
  if (cause === 34) return 'CONGESTION';
  return 'NOANSWER';
}

/** `carol` → carol, `1002@trunk` → trunk, `carol/sip:carol@host` → carol. */
export function pjsipEndpointName(resource: string): string {
  const first = resource.split('/')[0] ?? resource;
  const at = first.indexOf('@');
  return at >= 0 ? first.slice(at + 1) : first;
}

function capitalize(s: string): string {
  return s ? s.charAt(0).toUpperCase() + s.slice(1) : s;
}
