// Types of the ARI emulator: its options, the in-memory records of channels
// and bridges, and the read-only views the public API hands to tests.

import type { Bridge, CallerId, Channel, ChannelState, DialplanCep, ReferTo, ReferredBy } from '../../src/ari/models.js';

export interface AriEmulatorOptions {
  /** Stasis application inbound calls enter (`Stasis(<app>)` in the emulated dialplan). Default `ari-transfer`. */
  app?: string;
  /** ARI user (ari.conf). Default `asterisk`. */
  username?: string;
  /** ARI password (ari.conf). Default `secret`. */
  password?: string;
  /** Asterisk `systemname`, the prefix of channel ids (`emu-1795265271.10`). Default `emu`. */
  systemName?: string;
  /** `asterisk_id` put on every event (the traces show the entity id `02:fc:00:00:00:01`). */
  asteriskId?: string;
  /** Dialplan context of the PJSIP endpoints. Default `from-phones` as in the traces. */
  context?: string;
  /**
   * The dialplan a phone's call runs before Stasis. `'trace-harness'` (default): the shared
   * traces' harness, `NoOp(From <endpoint> to <exten>)` at priority 1, then
   * `Stasis(<app>[,args])` at 2. `'asterisk-config'`: this repository's extensions.conf,
   * `Stasis(<app>)` at priority 1 (the recorder's traces).
   */
  inboundDialplan?: 'trace-harness' | 'asterisk-config';
  /**
   * Also emit the events the traces show around the interesting ones (ChannelDialplan,
   * ChannelVarset STASISSTATUS/BRIDGEPEER, Dial), so clients are exercised with
   * event types they must ignore. Default true.
   */
  noiseEvents?: boolean;
  /**
   * PJSIP endpoints' `callerid` (pjsip.conf), e.g. `{ bob: '"Bob" <bob>' }` as in the shared
   * traces: the caller of the endpoint's own calls (unless phoneCalls names one), and the
   * caller a channel originated to it shows in ChannelCreated, before the originate's
   * `callerId` applies. Default: none (this repository's pjsip.conf).
   */
  callerIds?: Record<string, string>;
  /** Like ari.conf `channelvars`: variables/functions put into every channel snapshot. */
  channelvars?: string[];
  /** TCP port, default 0 (random). */
  port?: number;
  /**
   * Order of a REST response and the events the request causes. Absent or null: the
   * events are sent first, then the response (deterministic). A number: a PRNG seeded
   * with it picks, per REST request, events first or response first (the events then
   * follow the response by 2-5 ms), as a real Asterisk delivers them in either order.
   */
  orderSeed?: number | null;
  /**
   * With `orderSeed`: a `DELETE /channels/{id}` drawn "response first" also *finishes* after
   * its 204, as on a real Asterisk (the channel's thread hangs it up a moment later; the
   * channel is still there meanwhile, `hangupPending`). Without it the hangup is complete when
   * the 204 goes out and only its events come late. Default false (`emu.settled()` is the
   * barrier tests need before asserting on channels once this is on).
   */
  asyncHangup?: boolean;
}

/** How a PJSIP endpoint's far end answers a REFER Asterisk sends it (ARI redirect). */
export type ReferAnswer =
  /** 202, NOTIFY 100, then the final NOTIFY 200 `finalAfterMs` after the REFER (default 5), and its BYE `byeAfterMs` later (default 2). */
  | { kind: 'accept'; finalAfterMs?: number; byeAfterMs?: number }
  /** An error response (default 403); the call stays up. */
  | { kind: 'refuse'; status?: number };

/** A REFER the emulated Asterisk sent (POST /channels/{id}/redirect). */
export interface ReferOutRecord {
  channelId: string;
  endpoint: string;
  referTo: string;
  /** The far end's final answer: 200 (taken), or the error status. */
  answer: number;
}

/** What an originated call to a PJSIP endpoint does (the far-end phone's behaviour). */
export type EndpointBehaviour =
  /** Rings, then answers after `afterMs` (default 5). */
  | { kind: 'answer'; afterMs?: number }
  /** Rings, then 486 Busy Here after `afterMs` (default 5): cause 17. */
  | { kind: 'busy'; afterMs?: number }
  /** Rings, then 603 Decline after `afterMs` (default 5): cause 21. */
  | { kind: 'reject'; afterMs?: number }
  /** Rings, then 503 after `afterMs` (default 5): cause 34. */
  | { kind: 'congestion'; afterMs?: number }
  /** Rings until the originate `timeout` (then cause 19) or until hung up / answered by the test. */
  | { kind: 'no-answer' }
  /** Asterisk cannot create the channel at all (unknown endpoint, no contact): originate answers 500. */
  | { kind: 'unreachable' };

/** The SIP dialog of a PJSIP channel as Asterisk sees it. */
export interface SipDialog {
  callId: string;
  /** Asterisk's tag. */
  localTag: string;
  /** The phone's tag. */
  remoteTag: string;
}

export type ChannelTech = 'PJSIP' | 'Local';
export type HangupBy = 'phone' | 'ari' | 'asterisk';

/** Internal, mutable record of a live channel. */
export interface ChannelRecord {
  id: string;
  name: string;
  tech: ChannelTech;
  /** PJSIP endpoint name, or the Local channel's `exten@context`. */
  endpoint: string;
  direction: 'inbound' | 'outbound';
  /** Runs a dialplan (inbound calls, the `;2` half of a Local channel): gets the PBX's own hangup request. */
  hasPbx: boolean;
  /** Stasis application the channel belongs to. */
  app: string;
  args: string[];
  state: ChannelState;
  protocolId: string;
  caller: CallerId;
  connected: CallerId;
  /** The connected line last indicated to the phone: a new one equal to it is not sent (channel.c indicate_connected_line). */
  indicatedConnected?: CallerId;
  /**
   * Connected-line updates sent to the phone (an UPDATE or re-INVITE with
   * P-Asserted-Identity), in order: the endpoints are taken to send them,
   * as asterisk-config's do (send_connected_line, send_pai).
   */
  connectedLineUpdates: CallerId[];
  dialplan: Required<DialplanCep>;
  creationtime: string;
  language: string;
  inStasis: boolean;
  bridgeId?: string;
  /** Music on hold plays to the channel: started by ARI (`POST /channels/{id}/moh`) or by Asterisk (a bridged peer held). */
  mohPlaying: boolean;
  mohClass?: string;
  mohBy?: 'ari' | 'hold';
  ringing: boolean;
  onHold: boolean;
  /** The endpoint's moh_suggest: the musicclass of its ChannelHold and the class its peers hear. */
  mohSuggest: string;
  dialog?: SipDialog;
  variables: Map<string, string>;
  /** The other half of a Local channel pair. */
  localPeerId?: string;
  localHalf?: 1 | 2;
  hangingUp: boolean;
  /** `DELETE /channels/{id}` was answered; the channel's thread has not hung it up yet. */
  softHangup?: boolean;
  /** The originate's dial string (`1003` of `PJSIP/1003`), as Dial events show it. */
  dialstring?: string;
  /** Pending dial timers (answer/busy/timeout) of an originated channel. */
  dialTimers: NodeJS.Timeout[];
}

export interface BridgeRecord {
  id: string;
  name: string;
  bridgeType: 'mixing' | 'holding';
  /** `dtmf_events` or `proxy_media` among the type flags: no native RTP bridging (recorded: simple_bridge). */
  noNative: boolean;
  technology: string;
  channels: string[];
  creationtime: string;
  mohPlaying: boolean;
  mohClass?: string;
}

/** Read-only view of a live channel for assertions. */
export interface EmulatedChannel {
  id: string;
  name: string;
  state: ChannelState;
  tech: ChannelTech;
  endpoint: string;
  direction: 'inbound' | 'outbound';
  app: string;
  args: string[];
  inStasis: boolean;
  bridgeId?: string;
  /** Music plays to the channel, whoever started it (see mohBy). */
  mohPlaying: boolean;
  mohClass?: string;
  /** Who started the music playing now: the app (`POST /channels/{id}/moh`) or Asterisk itself (a bridged peer put the call on hold). */
  mohBy?: 'ari' | 'hold';
  /** Ringing indicated to the phone with `POST /channels/{id}/ring`. */
  ringing: boolean;
  /** The phone put the call on hold (phoneHolds). */
  onHold: boolean;
  /** Hung up over REST (`DELETE /channels/{id}` answered) and not destroyed yet: the channel's thread finishes it a moment later. */
  hangupPending: boolean;
  caller: CallerId;
  connected: CallerId;
  /** The connected-line updates the phone was sent, in order (see ChannelRecord). */
  connectedLineUpdates: CallerId[];
  protocolId: string;
  dialog?: SipDialog;
  variables: Record<string, string>;
}

/** Read-only view of a live bridge for assertions. */
export interface EmulatedBridge {
  id: string;
  name: string;
  type: 'mixing' | 'holding';
  technology: string;
  channels: string[];
  mohPlaying: boolean;
  mohClass?: string;
}

export interface HangupRecord {
  channelId: string;
  name: string;
  cause: number;
  by: HangupBy;
}

export interface RequestRecord {
  method: string;
  /** Path without the `/ari` prefix, as in the traces' rest.jsonl. */
  path: string;
  query: Record<string, string>;
  status: number;
  /** Only on requests a fault injection touched: failed on purpose, or answered late. */
  injected?: 'failure' | 'delay';
  /** Only with `orderSeed`: the response went out before the events the request caused. */
  order?: 'response-first';
  /** Only on requests sent as RESTRequest frames on the events WebSocket. */
  via?: 'websocket';
}

/** An event as sent on the WebSocket (the fields the emulator's events can carry, plus any other). */
export interface EmittedEvent {
  type: string;
  timestamp: string;
  application: string;
  asterisk_id?: string;
  channel?: Channel;
  bridge?: Bridge;
  state?: string;
  cause?: number;
  cause_txt?: string;
  soft?: boolean;
  args?: string[];
  refer_to?: ReferTo;
  referred_by?: ReferredBy;
  [key: string]: unknown;
}

/** Which REST requests a fault injection applies to. */
export interface RequestMatch {
  method: string;
  /** Tested against the path without the `/ari` prefix (e.g. `/bridges/b1/addChannel`). */
  path: RegExp;
  /** Only requests whose query has these exact values. */
  query?: Record<string, string>;
  /** How many matching requests are affected (default 1). */
  times?: number;
}

/** `emu.failNext()`: the next matching REST request(s) fail, without any state change. */
export interface FailureInjection extends RequestMatch {
  status: number;
  /** `{"message": ...}` of the response; default: the HTTP reason phrase. */
  message?: string;
  /** Answer the failure only after this many ms (a slow error; the client may time out first). */
  delayMs?: number;
}

/**
 * `emu.delayNext()`: the next matching REST request(s) are answered `delayMs` late
 * (an Asterisk too busy to answer in time). `effect` says when the request takes effect:
 * `'on-response'` (default): it is carried out only when answered, `delayMs` after it arrived
 * (Asterisk had not got to it yet); `'on-arrival'`: carried out at once, with its events,
 * and only the response is late (the work was done, the answer was slow).
 * A client that gave up meanwhile never sees the answer, but the effect still happens.
 */
export interface DelayInjection extends RequestMatch {
  delayMs: number;
  effect?: 'on-response' | 'on-arrival';
}

/**
 * `emu.respondFirst()`: the next matching request is answered before the events it causes,
 * which follow `eventsAfterMs` after the response was written (a real Asterisk often answers
 * first). Seeded order mode or not, this request's order is the test's: it controls the timing.
 */
export interface ResponseFirst extends RequestMatch {
  eventsAfterMs: number;
}

/**
 * `emu.beforeNext()`: runs `run` (a scenario step, e.g. a phone hanging up) just before the
 * next matching request is carried out, as if both happened at the same instant in Asterisk:
 * the request then sees the world `run` left behind. Nothing else about the request changes.
 */
export interface RequestHook extends RequestMatch {
  run: () => void;
}

/**
 * `emu.failRandomly()`: each matching REST request fails with `status` with probability `rate`,
 * without any state change; `exclude` paths are never failed. Deterministic for a given `seed`.
 */
export interface RandomFailure {
  rate: number;
  status?: number;
  message?: string;
  /** Only these methods (default: every method). */
  methods?: string[];
  /** Only paths matching this (default: every path). */
  path?: RegExp;
  /** Never these paths. */
  exclude?: RegExp[];
  seed?: number;
}

export type ReferSpec =
  | { kind: 'blind'; destination: string; expires?: number }
  | {
      kind: 'attended';
      destination: string;
      replaces: { callId: string; fromTag: string; toTag: string };
      /** false: a dialog Asterisk does not know (behind a proxy, another PBX). Default true. */
      resolvable?: boolean;
      expires?: number;
    };

export interface ReferNotify {
  /** sipfrag status code (`SIP/2.0 100 Trying` → 100). 0 is pjproject's `SIP/2.0 0 Default status message`. */
  code: number;
  subscriptionState: 'active' | 'terminated';
}

export interface ReferHandle {
  id: string;
  sourceChannelId: string;
  kind: 'blind' | 'attended';
  destination: string;
  /** sipfrag status codes of the NOTIFYs the phone received, in order. */
  sipfrags: number[];
  /** The NOTIFYs in detail. */
  notifies: ReferNotify[];
  /** The implicit subscription is terminated. */
  terminated: boolean;
  /** Resolves with `sipfrags` once terminated; rejects on timeout listing what was received. */
  waitForTermination(timeoutMs?: number): Promise<number[]>;
}
