// The event side of the emulator: which WebSocket gets which event, the log of
// everything emitted, and builders that produce each event with the key order the
// traces show (blob fields such as `cause`/`soft`/`variable` come first, then
// `type`, `timestamp`, the payload, `asterisk_id`, `application`).

import { WebSocket } from 'ws';
import type { Bridge, Channel, ReferTo, ReferredBy } from '../../src/ari/models.js';
import type { EmittedEvent } from './types.js';
import { asteriskTimestamp, causeText } from './util.js';

export interface EventSocket {
  ws: WebSocket;
  apps: string[];
  subscribeAll: boolean;
}

/** Which objects an event is about; decides delivery to apps not using subscribeAll. */
export interface EventScope {
  channels?: string[];
  bridges?: string[];
  /** Application name written into the event log entry (default: the emulator's app). */
  app?: string;
  /**
   * Sent by res_stasis to the channel's own application only (StasisStart, StasisEnd):
   * other applications' sockets do not get it, subscribeAll or not (multi-app trace).
   */
  appOnly?: boolean;
}

/**
 * Frames of one event, addressed when it was emitted, or an action deferred behind held
 * events (see `defer`), waiting for the holds it was queued under.
 */
interface QueuedDelivery {
  sends: [EventSocket, Record<string, unknown>][];
  action?: () => void;
  blockers: Set<number>;
}

export class EventHub {
  /** Every event emitted, whether or not a socket was there to receive it. */
  readonly log: EmittedEvent[] = [];
  private readonly sockets = new Set<EventSocket>();
  /** Delivery holds (see holdDelivery) and the events waiting behind them, in order. */
  private readonly holds = new Set<number>();
  private readonly queue: QueuedDelivery[] = [];
  private holdSeq = 0;
  private readonly channelSubs = new Map<string, Set<string>>();
  private readonly bridgeSubs = new Map<string, Set<string>>();

  constructor(
    private readonly defaultApp: string,
    private readonly asteriskId: string,
  ) {}

  // ---- sockets -------------------------------------------------------------

  addSocket(entry: EventSocket): void {
    // A second WebSocket registering an app takes it over; the older one is told
    // with ApplicationReplaced and gets nothing more for that app (res/ari/resource_events.c).
    for (const other of this.sockets) {
      for (const app of entry.apps) {
        if (!other.apps.includes(app)) continue;
        other.apps = other.apps.filter((a) => a !== app);
        this.sendRaw(other, {
          type: 'ApplicationReplaced',
          timestamp: asteriskTimestamp(),
          asterisk_id: this.asteriskId,
          application: app,
        });
      }
    }
    this.sockets.add(entry);
  }

  removeSocket(entry: EventSocket): void {
    this.sockets.delete(entry);
  }

  allSockets(): EventSocket[] {
    return [...this.sockets];
  }

  openSocketCount(): number {
    let n = 0;
    for (const s of this.sockets) if (s.ws.readyState === WebSocket.OPEN) n++;
    return n;
  }

  /** An app is registered (Stasis() can run it) while a WebSocket for it is open. */
  isAppActive(app: string): boolean {
    for (const s of this.sockets) {
      if (s.ws.readyState === WebSocket.OPEN && s.apps.includes(app)) return true;
    }
    return false;
  }

  // ---- subscriptions (for sockets without subscribeAll) ---------------------

  subscribeChannel(channelId: string, app: string): void {
    let set = this.channelSubs.get(channelId);
    if (!set) this.channelSubs.set(channelId, (set = new Set()));
    set.add(app);
  }

  subscribeBridge(bridgeId: string, app: string): void {
    let set = this.bridgeSubs.get(bridgeId);
    if (!set) this.bridgeSubs.set(bridgeId, (set = new Set()));
    set.add(app);
  }

  forgetChannel(channelId: string): void {
    this.channelSubs.delete(channelId);
  }

  forgetBridge(bridgeId: string): void {
    this.bridgeSubs.delete(bridgeId);
  }

  // ---- emission ------------------------------------------------------------

  /**
   * Completes `body` with asterisk_id and application, logs it and sends it to every
   * interested socket (decided now, sent now or, while a delivery hold is on, later in order).
   */
  emit(body: Record<string, unknown> & { type: string; timestamp: string }, scope: EventScope = {}): EmittedEvent {
    const event = { ...body, asterisk_id: this.asteriskId, application: scope.app ?? this.defaultApp } as EmittedEvent;
    this.log.push(event);
    const sends: [EventSocket, Record<string, unknown>][] = [];
    for (const socket of this.sockets) {
      for (const app of socket.apps) {
        const wanted = scope.appOnly ? app === event.application : socket.subscribeAll || this.isSubscribed(app, scope);
        if (wanted) sends.push([socket, { ...event, application: app }]);
      }
    }
    this.queue.push({ sends, blockers: new Set(this.holds) });
    this.flush();
    return event;
  }

  /**
   * Holds back the delivery of every event emitted from now until the returned release
   * is called (a REST response that must reach the client before the events it caused).
   * Order on each socket is kept: later events also wait behind held ones.
   */
  holdDelivery(): () => void {
    const id = ++this.holdSeq;
    this.holds.add(id);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds.delete(id);
      for (const q of this.queue) q.blockers.delete(id);
      this.flush();
    };
  }

  /**
   * Runs `action` once the events emitted so far under the current holds have gone out: work
   * Asterisk finishes after its response (the rest of a REST hangup). At once when nothing is held.
   */
  defer(action: () => void): void {
    this.queue.push({ sends: [], action, blockers: new Set(this.holds) });
    this.flush();
  }

  /** Nothing held back: no hold on, no event or deferred action waiting. */
  get idle(): boolean {
    return this.holds.size === 0 && this.queue.length === 0;
  }

  private flushing = false;

  private flush(): void {
    if (this.flushing) return; // an action's own events join the queue and go out in this loop
    this.flushing = true;
    try {
      while (this.queue.length > 0 && this.queue[0]!.blockers.size === 0) {
        const next = this.queue.shift()!;
        for (const [socket, frame] of next.sends) this.sendRaw(socket, frame);
        next.action?.();
      }
    } finally {
      this.flushing = false;
    }
  }

  private isSubscribed(app: string, scope: EventScope): boolean {
    for (const c of scope.channels ?? []) if (this.channelSubs.get(c)?.has(app)) return true;
    for (const b of scope.bridges ?? []) if (this.bridgeSubs.get(b)?.has(app)) return true;
    return false;
  }

  private sendRaw(socket: EventSocket, event: Record<string, unknown>): void {
    if (socket.ws.readyState !== WebSocket.OPEN) return; // lost, like Asterisk's "missed message"
    socket.ws.send(JSON.stringify(event));
  }
}

// ---- builders (key order from the recorded events) --------------------------

const now = (): string => asteriskTimestamp();

export const build = {
  channelCreated: (channel: Channel) => ({ type: 'ChannelCreated', timestamp: now(), channel }),
  channelStateChange: (channel: Channel) => ({ type: 'ChannelStateChange', timestamp: now(), channel }),
  channelDialplan: (channel: Channel, app: string, data: string) => ({
    type: 'ChannelDialplan',
    timestamp: now(),
    dialplan_app: app,
    dialplan_app_data: data,
    channel,
  }),
  channelConnectedLine: (channel: Channel) => ({ type: 'ChannelConnectedLine', timestamp: now(), channel }),
  channelVarset: (channel: Channel, variable: string, value: string) => ({
    variable,
    value,
    type: 'ChannelVarset',
    timestamp: now(),
    channel,
  }),
  dial: (peer: Channel, dialstring: string, dialstatus: string) => ({
    type: 'Dial',
    timestamp: now(),
    dialstatus,
    forward: '',
    dialstring,
    peer,
  }),
  stasisStart: (channel: Channel, args: string[]) => ({ type: 'StasisStart', timestamp: now(), args: [...args], channel }),
  stasisEnd: (channel: Channel) => ({ type: 'StasisEnd', timestamp: now(), channel }),
  /**
   * `blob` is `{}` for a phone's BYE, `{cause, soft}` for a soft hangup, `{cause, tech_cause}`
   * for a far end's error response (dial-busy: `tech_cause` is the SIP status, 486).
   */
  channelHangupRequest: (channel: Channel, blob: { cause?: number; tech_cause?: number; soft?: boolean }) => ({
    ...(blob.cause !== undefined ? { cause: blob.cause } : {}),
    ...(blob.tech_cause !== undefined ? { tech_cause: blob.tech_cause } : {}),
    ...(blob.soft !== undefined ? { soft: blob.soft } : {}),
    type: 'ChannelHangupRequest',
    timestamp: now(),
    channel,
  }),
  /** `tech_cause`: the SIP status behind the cause, when there is one (dial-* traces). */
  channelDestroyed: (channel: Channel, cause: number, techCause?: number) => ({
    type: 'ChannelDestroyed',
    timestamp: now(),
    cause,
    cause_txt: causeText(cause),
    ...(techCause !== undefined ? { tech_cause: techCause } : {}),
    channel,
  }),
  bridgeCreated: (bridge: Bridge) => ({ type: 'BridgeCreated', timestamp: now(), bridge }),
  bridgeDestroyed: (bridge: Bridge) => ({ type: 'BridgeDestroyed', timestamp: now(), bridge }),
  channelEnteredBridge: (bridge: Bridge, channel: Channel) => ({
    type: 'ChannelEnteredBridge',
    timestamp: now(),
    bridge,
    channel,
  }),
  channelLeftBridge: (bridge: Bridge, channel: Channel) => ({ type: 'ChannelLeftBridge', timestamp: now(), bridge, channel }),
  /** hold trace: `musicclass` (the endpoint's moh_suggest) comes before `channel`, absent when empty. */
  channelHold: (channel: Channel, musicclass?: string) => ({
    type: 'ChannelHold',
    timestamp: now(),
    ...(musicclass ? { musicclass } : {}),
    channel,
  }),
  channelUnhold: (channel: Channel) => ({ type: 'ChannelUnhold', timestamp: now(), channel }),
  /** No `state` key at all on the event announcing a REFER (all traces). */
  channelTransfer: (refer_to: ReferTo, referred_by: ReferredBy, state?: string) => ({
    type: 'ChannelTransfer',
    timestamp: now(),
    refer_to,
    referred_by,
    ...(state !== undefined ? { state } : {}),
  }),
};
