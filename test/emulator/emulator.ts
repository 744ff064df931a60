// AriEmulator: the public face of the emulator. It starts the HTTP/WebSocket
// server and offers the scenario API (phones, far ends, REFERs), inspection for
// assertions, and fault injection.

import type { Bridge, Channel } from '../../src/ari/models.js';
import { Dialer, type InboundCallOptions, type OriginateParams } from './dialing.js';
import { EventHub } from './events.js';
import { RestRouter, type RestResponse } from './rest.js';
import { RequestPipeline } from './pipeline.js';
import { AriHttpServer } from './server.js';
import { AriState } from './state.js';
import { Redirects } from './redirects.js';
import { TransferManager } from './transfers.js';
import type {
  AriEmulatorOptions,
  BridgeRecord,
  ChannelRecord,
  EmittedEvent,
  EmulatedBridge,
  EmulatedChannel,
  DelayInjection,
  EndpointBehaviour,
  FailureInjection,
  RandomFailure,
  RequestHook,
  ResponseFirst,
  HangupRecord,
  ReferAnswer,
  ReferHandle,
  ReferOutRecord,
  ReferSpec,
  RequestRecord,
  SipDialog,
} from './types.js';
import { AriError, asteriskTimestamp, parseCallerId, pollUntil, Scheduler } from './util.js';

export class AriEmulator {
  /**
   * Defaults for every emulator started afterwards, under the options given to start():
   * the e2e suites set `orderSeed` here (test/emulator/order-mode.setup.ts).
   */
  static defaults: AriEmulatorOptions = {};

  readonly app: string;
  /** The seed of the REST response / event order, when that mode is on. */
  readonly orderSeed: number | undefined;
  private readonly scheduler = new Scheduler();
  private readonly hub: EventHub;
  private readonly state: AriState;
  private readonly dialer: Dialer;
  private readonly transfers: TransferManager;
  private readonly redirects: Redirects;
  private readonly router: RestRouter;
  private readonly pipeline: RequestPipeline;
  private readonly server: AriHttpServer;
  private readonly pastDialogs = new Map<string, SipDialog>();

  private constructor(given: AriEmulatorOptions) {
    const options = { ...AriEmulator.defaults, ...given };
    this.orderSeed = options.orderSeed ?? undefined;
    this.app = options.app ?? 'ari-transfer';
    const asteriskId = options.asteriskId ?? '02:fc:00:00:00:01';
    const systemName = options.systemName ?? 'emu';
    this.hub = new EventHub(this.app, asteriskId);
    this.state = new AriState(
      {
        app: this.app,
        systemName,
        context: options.context ?? 'from-phones',
        inboundDialplan: options.inboundDialplan ?? 'trace-harness',
        callerIds: Object.fromEntries(Object.entries(options.callerIds ?? {}).map(([k, v]) => [k, parseCallerId(v)])),
        noise: options.noiseEvents ?? true,
        channelvars: options.channelvars ?? [],
      },
      this.hub,
      this.scheduler,
    );
    this.dialer = new Dialer(this.state);
    this.transfers = new TransferManager(this.state);
    this.redirects = new Redirects(this.state, this.scheduler);
    this.state.beforeDestroy.push((ch) => {
      if (ch.dialog) this.pastDialogs.set(ch.id, { ...ch.dialog });
    });
    this.router = new RestRouter({
      state: this.state,
      dialer: this.dialer,
      transfers: this.transfers,
      redirects: this.redirects,
      asteriskId,
      systemName,
      startedAt: asteriskTimestamp(),
      asyncHangup: options.asyncHangup ?? false,
    });
    this.pipeline = new RequestPipeline({
      router: this.router,
      hub: this.hub,
      ...(this.orderSeed !== undefined ? { orderSeed: this.orderSeed } : {}),
    });
    this.server = new AriHttpServer({
      username: options.username ?? 'asterisk',
      password: options.password ?? 'secret',
      pipeline: this.pipeline,
      hub: this.hub,
      asteriskId,
    });
  }

  static async start(options: AriEmulatorOptions = {}): Promise<AriEmulator> {
    const emu = new AriEmulator(options);
    await emu.server.listen(options.port ?? 0);
    return emu;
  }

  /** `http://127.0.0.1:<port>`; REST under `${url}/ari/...`, events at `ws://127.0.0.1:<port>/ari/events?app=...`. */
  get url(): string {
    return this.server.url;
  }

  async close(): Promise<void> {
    this.scheduler.clearAll();
    this.pipeline.close();
    await this.server.close();
  }

  // ---- phones and far ends ---------------------------------------------------

  /** A phone calls `exten`; the call enters Stasis (ChannelCreated, StasisStart). Returns the channel as at StasisStart. */
  phoneCalls(opts: InboundCallOptions): Channel {
    const ch = this.dialer.inboundCall(opts);
    return this.state.snap(ch);
  }

  /** The SIP dialog of a PJSIP channel (also after it is gone). */
  dialogOf(channelId: string): SipDialog {
    const d = this.state.channels.get(channelId)?.dialog ?? this.pastDialogs.get(channelId);
    if (!d) throw new Error(`ARI emulator: no SIP dialog for channel ${channelId}`);
    return { ...d };
  }

  /** How originated calls to PJSIP/<name> (or a Local `exten@context`) behave. Unknown endpoints answer. */
  setEndpoint(name: string, behaviour: EndpointBehaviour): void {
    this.dialer.setEndpoint(name, behaviour);
  }

  /**
   * The phone hangs up (BYE): ChannelHangupRequest without cause/soft, ChannelLeftBridge,
   * StasisEnd, ChannelHangupRequest 16, ChannelDestroyed 16 (attended 7.289-7.290).
   * On an originated call that is still ringing the phone declines it instead (603, cause 21).
   */
  phoneHangsUp(channelId: string): void {
    const ch = this.liveChannel(channelId);
    if (ch.direction === 'outbound' && ch.state !== 'Up') {
      this.dialer.farEndFails(ch, 21, 603);
      return;
    }
    this.state.hangup(ch, { by: 'phone', request: {}, cause: 16 });
  }

  /** How the far end of PJSIP/<endpoint>'s calls answers a REFER (POST /channels/{id}/redirect); not told, it refuses with 403. */
  setReferAnswer(endpoint: string, answer: ReferAnswer): void {
    this.redirects.setAnswer(endpoint, answer);
  }

  /** Every REFER sent to a far end (redirect), in order. */
  get refersOut(): readonly ReferOutRecord[] {
    return this.redirects.sent;
  }

  /** The far end of a ringing originated call answers now (e.g. with `{kind: 'no-answer'}`). */
  phoneAnswers(channelId: string): void {
    this.dialer.phoneAnswers(this.liveChannel(channelId));
  }

  /**
   * The phone puts the call on hold (re-INVITE sendonly): ChannelHold (musicclass: the
   * endpoint's moh_suggest, `default`), and Asterisk itself plays music on hold to the other
   * PJSIP channels of its bridge (hold trace).
   */
  phoneHolds(channelId: string): void {
    this.state.hold(this.liveChannel(channelId), true);
  }

  /** The phone resumes the call: ChannelUnhold; Asterisk stops the music on the bridged peers. */
  phoneUnholds(channelId: string): void {
    this.state.hold(this.liveChannel(channelId), false);
  }

  // ---- what the app would do over REST (same code path, not logged in `requests`) ----

  answer(channelId: string): void {
    this.invoke('POST', `/channels/${enc(channelId)}/answer`);
  }

  hangup(channelId: string, reason?: string): void {
    this.invoke('DELETE', `/channels/${enc(channelId)}`, reason ? { reason } : {});
  }

  createBridge(opts: { id?: string; name?: string; type?: string } = {}): Bridge {
    const query: Record<string, string> = {};
    if (opts.name !== undefined) query.name = opts.name;
    if (opts.type !== undefined) query.type = opts.type;
    const path = opts.id ? `/bridges/${enc(opts.id)}` : '/bridges';
    return this.invoke('POST', path, query).body as Bridge;
  }

  destroyBridge(bridgeId: string): void {
    this.invoke('DELETE', `/bridges/${enc(bridgeId)}`);
  }

  addToBridge(bridgeId: string, channelId: string, options: { inhibitConnectedLineUpdates?: boolean } = {}): void {
    this.invoke('POST', `/bridges/${enc(bridgeId)}/addChannel`, {
      channel: channelId,
      ...(options.inhibitConnectedLineUpdates ? { inhibitConnectedLineUpdates: 'true' } : {}),
    });
  }

  removeFromBridge(bridgeId: string, channelId: string): void {
    this.invoke('POST', `/bridges/${enc(bridgeId)}/removeChannel`, { channel: channelId });
  }

  startMoh(channelId: string, mohClass?: string): void {
    this.invoke('POST', `/channels/${enc(channelId)}/moh`, mohClass ? { mohClass } : {});
  }

  stopMoh(channelId: string): void {
    this.invoke('DELETE', `/channels/${enc(channelId)}/moh`);
  }

  startBridgeMoh(bridgeId: string, mohClass?: string): void {
    this.invoke('POST', `/bridges/${enc(bridgeId)}/moh`, mohClass ? { mohClass } : {});
  }

  stopBridgeMoh(bridgeId: string): void {
    this.invoke('DELETE', `/bridges/${enc(bridgeId)}/moh`);
  }

  /** Like `POST /channels`; returns the snapshot of the 200 response. Throws on the errors REST would answer. */
  originate(params: OriginateParams): Channel {
    try {
      return this.dialer.originate(params).snapshot;
    } catch (err) {
      if (err instanceof AriError) throw new Error(`ARI emulator: originate → ${err.message}`);
      throw err;
    }
  }

  // ---- REFER -------------------------------------------------------------------

  /** The phone on `sourceChannelId` sends REFER; Asterisk answers 202 and emits ChannelTransfer (no `state`). */
  sendRefer(sourceChannelId: string, spec: ReferSpec): ReferHandle {
    return this.transfers.sendRefer(sourceChannelId, spec);
  }

  get refers(): ReferHandle[] {
    return [...this.transfers.refers];
  }

  // ---- inspection ----------------------------------------------------------------

  channel(id: string): EmulatedChannel | undefined {
    const ch = this.state.channels.get(id);
    return ch ? channelView(ch) : undefined;
  }

  bridge(id: string): EmulatedBridge | undefined {
    const b = this.state.bridges.get(id);
    return b ? bridgeView(b) : undefined;
  }

  channels(): EmulatedChannel[] {
    return [...this.state.channels.values()].map(channelView);
  }

  bridges(): EmulatedBridge[] {
    return [...this.state.bridges.values()].map(bridgeView);
  }

  /** Every channel destroyed, in order. */
  get hangups(): HangupRecord[] {
    return [...this.state.hangups];
  }

  /** Every REST request received (path without /ari). */
  get requests(): RequestRecord[] {
    return [...this.pipeline.requests];
  }

  /** Every event emitted, whether or not a socket received it. */
  get events(): EmittedEvent[] {
    return [...this.hub.log];
  }

  /**
   * Waits until Asterisk has caught up with every REST request answered so far: in the
   * order mode a response-first request's events (and the rest of a REST hangup) follow
   * the response by a few ms. Assert on channels, bridges and hangups after this.
   */
  settled(timeoutMs = 2000): Promise<void> {
    return pollUntil(
      () => this.hub.idle && [...this.state.channels.values()].every((c) => !c.softHangup || c.hangingUp),
      timeoutMs,
      'the emulator to settle (held events, REST hangups still finishing)',
    );
  }

  waitFor(predicate: () => boolean, timeoutMs = 2000): Promise<void> {
    return pollUntil(predicate, timeoutMs, 'condition');
  }

  /** Waits for an emitted event of `type` (optionally matching `match`) at or after index `since` of `events`. */
  async waitForEvent(
    type: string,
    match: (e: EmittedEvent) => boolean = () => true,
    opts: { since?: number; timeoutMs?: number } = {},
  ): Promise<EmittedEvent> {
    let found: EmittedEvent | undefined;
    await pollUntil(
      () => {
        found = this.hub.log.slice(opts.since ?? 0).find((e) => e.type === type && match(e));
        return found !== undefined;
      },
      opts.timeoutMs ?? 2000,
      `event ${type}`,
      () => `last events: ${this.hub.log.slice(-8).map((e) => e.type).join(', ')}`,
    );
    return found!;
  }

  // ---- faults and the WebSocket ----------------------------------------------------

  /** The next matching REST request(s) fail with `status` and no state change (after `delayMs`, if given). */
  failNext(f: FailureInjection): void {
    this.pipeline.failNext(f);
  }

  /** The next matching REST request(s) are answered `delayMs` late; see DelayInjection for when they take effect. */
  delayNext(d: DelayInjection): void {
    this.pipeline.delayNext(d);
  }

  /** Runs `run` (a scenario step) just before the next matching REST request is carried out. */
  beforeNext(h: RequestHook): void {
    this.pipeline.beforeNext(h);
  }

  /** The next matching REST request is answered first, its events follow `eventsAfterMs` later. */
  respondFirst(r: ResponseFirst): void {
    this.pipeline.respondFirst(r);
  }

  /** From now on each matching REST request fails with probability `rate` (seeded); `undefined` stops it. */
  failRandomly(f: RandomFailure | undefined): void {
    this.pipeline.failRandomly(f);
  }

  /**
   * Sends `text` verbatim as a text frame on every open events socket, outside the event
   * log: a misbehaving peer (malformed or made-up events). Returns how many sockets got it.
   */
  sendRawFrame(text: string): number {
    return this.server.sendRawFrame(text);
  }

  /**
   * Forgets what inspection has recorded so far (`events`, `requests`, `hangups`, finished
   * `refers`, dialogs of gone channels), for long runs that would otherwise only grow.
   * Live channels, bridges and REFERs still waiting for a final NOTIFY are untouched.
   */
  forgetHistory(): void {
    this.hub.log.length = 0;
    this.pipeline.requests.length = 0;
    this.state.hangups.length = 0;
    const active = this.transfers.refers.filter((r) => !r.terminated);
    this.transfers.refers.splice(0, this.transfers.refers.length, ...active);
    this.pastDialogs.clear();
  }

  /** Abruptly closes every events socket; events emitted meanwhile are lost. */
  dropWebSockets(): void {
    this.server.dropWebSockets();
  }

  /** While on, WebSocket upgrades get HTTP 503 (Asterisk down). */
  refuseWebSockets(on: boolean): void {
    this.server.refuseWebSockets(on);
  }

  get connectedSockets(): number {
    return this.hub.openSocketCount();
  }

  waitForSocket(timeoutMs = 2000): Promise<void> {
    return pollUntil(() => this.hub.openSocketCount() > 0, timeoutMs, 'an events WebSocket to connect');
  }

  // ---- internals -------------------------------------------------------------------

  private liveChannel(channelId: string): ChannelRecord {
    const ch = this.state.channels.get(channelId);
    if (!ch || ch.hangingUp) throw new Error(`ARI emulator: no live channel ${channelId}`);
    return ch;
  }

  private invoke(method: string, path: string, query: Record<string, string> = {}): RestResponse {
    const out = this.router.handle({ method, path, query, body: undefined });
    if (out.status >= 300) {
      const body = out.body as { message?: string; error?: string } | undefined;
      throw new Error(`ARI emulator: ${method} ${path} → ${out.status} ${body?.message ?? body?.error ?? ''}`.trim());
    }
    return out;
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

function channelView(ch: ChannelRecord): EmulatedChannel {
  return {
    id: ch.id,
    name: ch.name,
    state: ch.state,
    tech: ch.tech,
    endpoint: ch.endpoint,
    direction: ch.direction,
    app: ch.app,
    args: [...ch.args],
    inStasis: ch.inStasis,
    ...(ch.bridgeId ? { bridgeId: ch.bridgeId } : {}),
    mohPlaying: ch.mohPlaying,
    ...(ch.mohClass ? { mohClass: ch.mohClass } : {}),
    ...(ch.mohBy ? { mohBy: ch.mohBy } : {}),
    ringing: ch.ringing,
    onHold: ch.onHold,
    hangupPending: ch.softHangup === true && !ch.hangingUp,
    caller: { ...ch.caller },
    connected: { ...ch.connected },
    connectedLineUpdates: ch.connectedLineUpdates.map((c) => ({ ...c })),
    protocolId: ch.protocolId,
    ...(ch.dialog ? { dialog: { ...ch.dialog } } : {}),
    variables: Object.fromEntries(ch.variables),
  };
}

function bridgeView(b: BridgeRecord): EmulatedBridge {
  return {
    id: b.id,
    name: b.name,
    type: b.bridgeType,
    technology: b.technology,
    channels: [...b.channels],
    mohPlaying: b.mohPlaying,
    ...(b.mohClass ? { mohClass: b.mohClass } : {}),
  };
}
