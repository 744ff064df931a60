// The channels and bridges Asterisk holds, and every mutation of them together
// with the events it produces, in the order of the recorded traces.

import { randomUUID } from 'node:crypto';
import type { CallerId, ChannelState } from '../../src/ari/models.js';
import { build, type EventHub } from './events.js';
import { bridgeSnapshot, channelSnapshot, settledTechnology } from './snapshots.js';
import type { BridgeRecord, ChannelRecord, HangupBy, HangupRecord, SipDialog } from './types.js';
import { asteriskTimestamp, hex8, type Scheduler } from './util.js';

export interface StateConfig {
  app: string;
  /** Endpoint → its pjsip.conf `callerid` (caller of its calls, and of a channel to it until the originate's callerId applies). */
  callerIds: Record<string, { name: string; number: string }>;
  systemName: string;
  context: string;
  inboundDialplan: 'trace-harness' | 'asterisk-config';
  noise: boolean;
  channelvars: string[];
}

export interface HangupOptions {
  by: HangupBy;
  /**
   * The first ChannelHangupRequest: `{cause: 32, soft: true}` for DELETE /channels
   * (ast_softhangup), `{}` for a phone's BYE, `{cause}` for a queued hangup
   * (a far end's error response, the other half of a Local channel), `null` for none
   * (Asterisk hanging up a channel directly: dial timeout, Stasis() failing).
   */
  request: { cause?: number; tech_cause?: number; soft?: boolean } | null;
  /** Cause of ChannelDestroyed. */
  cause: number;
  /** `tech_cause` of ChannelDestroyed: the SIP status behind the cause (486, 603, 503; 480 for a dial timeout). */
  techCause?: number;
  /** Runs just before ChannelDestroyed (the final Dial event of a refused originate). */
  beforeDestroy?: () => void;
}

/** Input of a new channel record; everything else gets defaults. */
export type NewChannel = Pick<ChannelRecord, 'id' | 'name' | 'tech' | 'endpoint' | 'direction' | 'hasPbx' | 'app'> &
  Partial<ChannelRecord>;

export class AriState {
  readonly channels = new Map<string, ChannelRecord>();
  readonly bridges = new Map<string, BridgeRecord>();
  readonly hangups: HangupRecord[] = [];
  /** Run while a channel hangs up, after StasisEnd and just before ChannelDestroyed (REFER teardown). */
  readonly beforeDestroy: ((ch: ChannelRecord) => void)[] = [];

  private uniqueSeq = 0;
  private pjsipSeq = 0;
  private localSeq = 0;
  private callSeq = 0;

  constructor(
    readonly cfg: StateConfig,
    readonly hub: EventHub,
    readonly scheduler: Scheduler,
  ) {}

  // ---- ids and names -------------------------------------------------------

  /** `<systemname>-<epoch>.<n>`, the uniqueid format of the traces (`ari-harness-1795265271.10`). */
  nextUniqueId(): string {
    const epoch = Math.floor(Date.now() / 1000);
    return `${this.cfg.systemName}-${epoch}.${this.uniqueSeq++}`;
  }

  nextPjsipName(endpoint: string): string {
    return `PJSIP/${endpoint}-${hex8(this.pjsipSeq++)}`;
  }

  /** Local channels have their own counter (`Local/echo@internal-00000000;1`, callid-local trace). */
  nextLocalBase(resource: string): string {
    return `Local/${resource}-${hex8(this.localSeq++)}`;
  }

  /** A phone's Call-ID in sipp's style (`1-22438@127.0.0.1`). */
  nextPhoneCallId(): string {
    this.callSeq++;
    return `${this.callSeq}-${20000 + Math.floor(Math.random() * 40000)}@127.0.0.1`;
  }

  newOutboundDialog(): SipDialog {
    // Asterisk as UAC: its own UUID Call-ID and tag (blind-answered: be06bd2b-...), the phone's tag.
    return { callId: randomUUID(), localTag: randomUUID(), remoteTag: `${randomUUID().slice(0, 8)}SIPpTag01` };
  }

  newInboundDialog(callId?: string): SipDialog {
    return {
      callId: callId ?? this.nextPhoneCallId(),
      localTag: randomUUID(),
      remoteTag: `${Math.floor(Math.random() * 90000) + 10000}SIPpTag0${this.callSeq % 10}`,
    };
  }

  uniqueIdInUse(id: string): boolean {
    return this.channels.has(id);
  }

  // ---- snapshots -----------------------------------------------------------

  snap(ch: ChannelRecord) {
    return channelSnapshot(ch, this.cfg.channelvars);
  }

  bsnap(b: BridgeRecord) {
    return bridgeSnapshot(b);
  }

  /** Channel events go out on the channel's topic: apps subscribed to the channel get them. */
  private chScope(ch: ChannelRecord) {
    return { channels: [ch.id], app: ch.app };
  }

  // ---- channels ------------------------------------------------------------

  addChannel(init: NewChannel): ChannelRecord {
    const ch: ChannelRecord = {
      args: [],
      state: 'Down',
      protocolId: '',
      caller: { name: '', number: '' },
      connected: { name: '', number: '' },
      connectedLineUpdates: [],
      dialplan: { context: this.cfg.context, exten: 's', priority: 1, app_name: '', app_data: '' },
      creationtime: asteriskTimestamp(),
      language: 'en',
      inStasis: false,
      mohPlaying: false,
      ringing: false,
      onHold: false,
      mohSuggest: 'default',
      variables: new Map(),
      hangingUp: false,
      dialTimers: [],
      ...init,
    };
    this.channels.set(ch.id, ch);
    return ch;
  }

  emitChannelCreated(ch: ChannelRecord): void {
    this.hub.emit(build.channelCreated(this.snap(ch)), this.chScope(ch));
  }

  /** Noise the traces show between the interesting events (only with noiseEvents). */
  noiseDialplan(ch: ChannelRecord, app: string, data: string): void {
    if (this.cfg.noise) this.hub.emit(build.channelDialplan(this.snap(ch), app, data), this.chScope(ch));
  }

  noiseVarset(ch: ChannelRecord, variable: string, value: string): void {
    if (this.cfg.noise) this.hub.emit(build.channelVarset(this.snap(ch), variable, value), this.chScope(ch));
  }

  noiseDial(ch: ChannelRecord, dialstring: string, status: string): void {
    if (this.cfg.noise) this.hub.emit(build.dial(this.snap(ch), dialstring, status), this.chScope(ch));
  }

  setState(ch: ChannelRecord, state: ChannelState): void {
    if (ch.state === state) return;
    ch.state = state;
    this.hub.emit(build.channelStateChange(this.snap(ch)), this.chScope(ch));
  }

  /**
   * Stasis(app,args...) starts: STASISSTATUS is cleared, then StasisStart (traces).
   * Returns false when the app has no WebSocket (Asterisk: "Stasis app not active"):
   * the caller then hangs the channel up.
   */
  enterStasis(ch: ChannelRecord, args: string[]): boolean {
    ch.dialplan = {
      ...ch.dialplan,
      app_name: 'Stasis',
      app_data: [ch.app, ...args].join(','),
    };
    if (!this.hub.isAppActive(ch.app)) {
      this.noiseVarset(ch, 'STASISSTATUS', 'FAILED');
      return false;
    }
    this.hub.subscribeChannel(ch.id, ch.app);
    this.noiseVarset(ch, 'STASISSTATUS', '');
    ch.inStasis = true;
    ch.args = [...args];
    this.hub.emit(build.stasisStart(this.snap(ch), args), { ...this.chScope(ch), appOnly: true });
    return true;
  }

  answer(ch: ChannelRecord): void {
    this.setState(ch, 'Up');
  }

  /**
   * The phone holds (re-INVITE a=sendonly) or resumes (a=sendrecv). hold trace: ChannelHold
   * with `musicclass` = the endpoint's moh_suggest, ChannelUnhold without. The hold frame
   * goes through the bridge and chan_pjsip starts music on hold on every other PJSIP member
   * by itself (recorded: ~50 RTP packets/s to the peer, "Started music on hold, class
   * 'default'"), and stops it at the resume, whoever started the music meanwhile.
   */
  hold(ch: ChannelRecord, on: boolean): void {
    ch.onHold = on;
    this.hub.emit(on ? build.channelHold(this.snap(ch), ch.mohSuggest) : build.channelUnhold(this.snap(ch)), this.chScope(ch));
    const b = ch.bridgeId ? this.bridges.get(ch.bridgeId) : undefined;
    for (const id of b?.channels ?? []) {
      const peer = this.channels.get(id);
      if (!peer || peer === ch || peer.tech !== 'PJSIP') continue;
      if (on) this.startMoh(peer, ch.mohSuggest, 'hold');
      else this.stopMoh(peer);
    }
  }

  startMoh(ch: ChannelRecord, mohClass: string, by: 'ari' | 'hold'): void {
    ch.mohPlaying = true;
    ch.mohClass = mohClass;
    ch.mohBy = by;
  }

  stopMoh(ch: ChannelRecord): void {
    ch.mohPlaying = false;
    ch.mohClass = undefined;
    ch.mohBy = undefined;
  }

  /** Bridge MOH (an announcer joins, no event names it): the technology follows the new member count. */
  setBridgeMoh(b: BridgeRecord, mohClass: string | undefined): void {
    b.mohPlaying = mohClass !== undefined;
    b.mohClass = mohClass;
    b.technology = settledTechnology(b, (id) => this.channels.get(id)?.tech);
  }

  /**
   * `DELETE /channels/{id}` answered before the hangup is done: ast_softhangup() publishes
   * ChannelHangupRequest {cause 32, soft} at once; the channel's own thread hangs it up
   * (bridge, Stasis, destroy) a moment later. Recorded: the 204 often arrives before any of
   * these events, and requests sent right after it (DELETE /bridges) interleave with the
   * hangup. Used in the order mode's "response first" case: the rest of the hangup runs when
   * the held events are let go, 2-5 ms after the response.
   */
  softHangup(ch: ChannelRecord, cause: number): void {
    if (ch.hangingUp || ch.softHangup) return;
    ch.softHangup = true;
    this.hub.emit(build.channelHangupRequest(this.snap(ch), { cause: 32, soft: true }), this.chScope(ch));
    this.hub.defer(() => {
      try {
        this.hangup(ch, { by: 'ari', request: null, cause });
      } catch (err) {
        console.error('[ari-emulator] deferred hangup failed:', err);
      }
    });
  }

  /**
   * The whole hangup of a channel. Order from the traces:
   * attended 7.289-7.290 (BYE): HangupRequest (no cause), LeftBridge, StasisEnd, HangupRequest 16 soft, Destroyed;
   * attended 9.295 (DELETE, inbound): HangupRequest 32 soft, LeftBridge, StasisEnd, HangupRequest 16 soft, Destroyed;
   * attended 9.297 (DELETE, originated): no second HangupRequest, an originated channel runs no PBX;
   * blind-noprogress 43.477: a pending REFER's second ChannelTransfer comes just before ChannelDestroyed;
   * callid-local: the other Local half gets HangupRequest {cause} before this half's ChannelDestroyed.
   */
  hangup(ch: ChannelRecord, opts: HangupOptions): void {
    if (ch.hangingUp || !this.channels.has(ch.id)) return;
    ch.hangingUp = true;
    for (const t of ch.dialTimers) this.scheduler.cancel(t);
    ch.dialTimers = [];

    if (opts.request) this.hub.emit(build.channelHangupRequest(this.snap(ch), opts.request), this.chScope(ch));
    if (ch.bridgeId) {
      const b = this.bridges.get(ch.bridgeId);
      if (b) this.leaveBridge(b, ch);
    }
    if (ch.inStasis) {
      ch.inStasis = false;
      this.hub.emit(build.stasisEnd(this.snap(ch)), { ...this.chScope(ch), appOnly: true });
      this.noiseVarset(ch, 'STASISSTATUS', 'SUCCESS');
    }

    const peer = ch.localPeerId ? this.channels.get(ch.localPeerId) : undefined;
    if (peer && !peer.hangingUp) {
      // The unreal driver queues the hangup on the other half with this half's cause.
      this.hub.emit(build.channelHangupRequest(this.snap(peer), { cause: opts.cause }), this.chScope(peer));
    }

    if (ch.hasPbx) {
      this.hub.emit(build.channelHangupRequest(this.snap(ch), { cause: 16, soft: true }), this.chScope(ch));
      if (this.cfg.inboundDialplan === 'asterisk-config' && ch.tech === 'PJSIP') this.runHangupExtension(ch);
    }

    opts.beforeDestroy?.();
    for (const hook of this.beforeDestroy) hook(ch);

    // After the PBX is gone the snapshot no longer shows Stasis; an originated channel
    // shows its dial placeholder again (ChannelDestroyed in attended/blind traces).
    ch.dialplan =
      ch.direction === 'outbound' && !ch.hasPbx
        ? { ...ch.dialplan, app_name: 'AppDial2', app_data: '(Outgoing Line)' }
        : { ...ch.dialplan, app_name: '', app_data: '' };
    this.stopMoh(ch);
    ch.ringing = false;
    this.hub.emit(build.channelDestroyed(this.snap(ch), opts.cause, opts.techCause), this.chScope(ch));
    this.channels.delete(ch.id);
    this.hub.forgetChannel(ch.id);
    this.hangups.push({ channelId: ch.id, name: ch.name, cause: opts.cause, by: opts.by });

    if (peer && !peer.hangingUp) {
      // callid-local: the other half finishes ~2 ms later (its PBX hangs it up).
      this.scheduler.after(2, () => this.hangup(peer, { by: 'asterisk', request: null, cause: opts.cause }));
    }
  }

  /**
   * asterisk-config's extensions.conf: when Stasis returns, the PBX runs the `h` extension,
   * `h,1,NoOp()` and, from the `_[a-zA-Z]!` pattern, `h,2,Hangup()`; ChannelDestroyed then
   * shows exten `h`, priority 2 (hold trace).
   */
  private runHangupExtension(ch: ChannelRecord): void {
    ch.dialplan = { ...ch.dialplan, exten: 'h', priority: 1, app_name: 'NoOp', app_data: '' };
    this.noiseDialplan(ch, 'NoOp', '');
    ch.dialplan = { ...ch.dialplan, priority: 2, app_name: 'Hangup', app_data: '' };
    this.noiseDialplan(ch, 'Hangup', '');
  }

  // ---- bridges -------------------------------------------------------------

  createBridge(id: string, name: string, bridgeType: 'mixing' | 'holding', noNative = false): BridgeRecord {
    const b: BridgeRecord = {
      id,
      name,
      bridgeType,
      noNative,
      technology: bridgeType === 'holding' ? 'holding_bridge' : 'simple_bridge',
      channels: [],
      creationtime: asteriskTimestamp(),
      mohPlaying: false,
    };
    this.bridges.set(id, b);
    this.hub.emit(build.bridgeCreated(this.bsnap(b)), { bridges: [id] });
    return b;
  }

  /** Stasis bridges are only destroyed on request, never when they empty (traces: DELETE /bridges). */
  destroyBridge(b: BridgeRecord): void {
    for (const id of [...b.channels]) {
      const ch = this.channels.get(id);
      if (ch) this.leaveBridge(b, ch);
    }
    b.mohPlaying = false;
    this.hub.emit(build.bridgeDestroyed(this.bsnap(b)), { bridges: [b.id] });
    this.bridges.delete(b.id);
    this.hub.forgetBridge(b.id);
  }

  /**
   * addChannel: a channel in another Stasis bridge departs it first (res/stasis/control.c
   * control_swap_channel_in_bridge; DESIGN.md: verified 204, ChannelLeftBridge old, ChannelEnteredBridge new).
   * The same bridge again also departs and re-joins (same code path).
   * `inhibitColp` (inhibitConnectedLineUpdates): the join itself updates no connected line.
   */
  addToBridge(b: BridgeRecord, ch: ChannelRecord, inhibitColp = false): void {
    if (ch.bridgeId) {
      const old = this.bridges.get(ch.bridgeId);
      if (old) this.leaveBridge(old, ch);
    }
    b.channels.push(ch.id);
    ch.bridgeId = b.id;
    this.hub.subscribeBridge(b.id, ch.app);
    // Snapshots list the members after the change; the technology shown is still the
    // one settled before it (attended.events.jsonl: bob enters with simple_bridge).
    this.hub.emit(build.channelEnteredBridge(this.bsnap(b), this.snap(ch)), { channels: [ch.id], bridges: [b.id], app: ch.app });
    this.afterMembershipChange(b, !inhibitColp);
  }

  removeFromBridge(b: BridgeRecord, ch: ChannelRecord): void {
    this.leaveBridge(b, ch);
  }

  private leaveBridge(b: BridgeRecord, ch: ChannelRecord): void {
    b.channels = b.channels.filter((id) => id !== ch.id);
    ch.bridgeId = undefined;
    this.hub.emit(build.channelLeftBridge(this.bsnap(b), this.snap(ch)), {
      channels: [ch.id],
      bridges: [b.id],
      app: ch.app,
    });
    // A leave always updates (bridge_channel.c: bridge_reconfigured(bridge, 1));
    // transfer-connected-line/README.md: the transferer leaving a bridge of three.
    this.afterMembershipChange(b, true);
  }

  private afterMembershipChange(b: BridgeRecord, colp: boolean): void {
    b.technology = settledTechnology(b, (id) => this.channels.get(id)?.tech);
    // A bridge that is two-party now gives each channel the other's caller id as
    // connected line (bridge.c bridge_reconfigured_connected_line_update; traces:
    // bob's `connected` becomes Alice once both are in att-bridge-1).
    if (colp && b.channels.length === 2) {
      const [a, c] = b.channels.map((id) => this.channels.get(id));
      if (a && c) {
        const [toA, toC] = [{ ...c.caller }, { ...a.caller }];
        this.updateConnectedLine(a, toA, true);
        this.updateConnectedLine(c, toC, true);
      }
    }
  }

  /**
   * A channel's connected line changes (CONNECTEDLINE() written, or a bridge's
   * update): the phone is sent it unless `indicate` is false (the i option) or
   * it equals the last one indicated (connected-line/README.md: redundant
   * updates are dropped). ChannelConnectedLine when the value changed, for a
   * bridge's own update too, as Asterisk does (recorded at a join).
   */
  updateConnectedLine(ch: ChannelRecord, id: CallerId, indicate: boolean): void {
    const same = (x: CallerId | undefined) => x !== undefined && x.name === id.name && x.number === id.number;
    const changed = !same(ch.connected);
    ch.connected = { ...id };
    if (changed) this.hub.emit(build.channelConnectedLine(this.snap(ch)), this.chScope(ch));
    if (!indicate || same(ch.indicatedConnected)) return;
    ch.indicatedConnected = { ...id };
    ch.connectedLineUpdates.push({ ...id });
  }

  /** The other member of a two-party bridge (ChannelTransfer's connected_channel). */
  twoPartyPeer(ch: ChannelRecord): ChannelRecord | undefined {
    if (!ch.bridgeId) return undefined;
    const b = this.bridges.get(ch.bridgeId);
    if (!b || b.channels.length !== 2) return undefined;
    const otherId = b.channels.find((id) => id !== ch.id);
    return otherId ? this.channels.get(otherId) : undefined;
  }

  findByDialog(callId: string, localTag: string, remoteTag: string): ChannelRecord | undefined {
    for (const ch of this.channels.values()) {
      const d = ch.dialog;
      if (d && !ch.hangingUp && d.callId === callId && d.localTag === localTag && d.remoteTag === remoteTag) return ch;
    }
    return undefined;
  }
}
