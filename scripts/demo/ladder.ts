// Turns what the ARI emulator observed (events, REST requests, hangups, and
// the NOTIFYs each REFER's phone received) into the steps of a SIP-style
// ladder diagram, and the state it ended in. Pure: no I/O, no emulator.
import type { Channel } from '../../src/ari/models.js';
import type { EmittedEvent, HangupBy, HangupRecord, ReferNotify, RequestRecord } from '../../test/emulator/index.js';
import { endpointOfChannelName } from './phones.js';
import { mergeTimeline, referSource, type TimelineItem } from './timeline.js';

/** What the demo keeps of a REFER: the emulator's ReferHandle fits. */
export interface ReferRecord {
  sourceChannelId: string;
  notifies: readonly ReferNotify[];
}

export interface LadderInput {
  events: readonly EmittedEvent[];
  requests?: readonly RequestRecord[];
  hangups?: readonly HangupRecord[];
  /** The REFERs sent, in order; without them NOTIFYs are inferred from the progress echoes. */
  refers?: readonly ReferRecord[];
  /** Phone name of a PJSIP endpoint or extension; undefined when not a known phone. */
  phoneOf(endpoint: string): string | undefined;
}

export type Step =
  | { kind: 'sip'; from: string; to: string; message: string; note?: string }
  | { kind: 'bridge'; bridge: string; text: string };

export interface Talking {
  bridge: string;
  parties: string[];
  /** The same parties were in this bridge when the (last) REFER arrived. */
  unchanged: boolean;
}

export interface HungUp {
  phone: string;
  legs: number;
  /** Causes other than normal clearing, e.g. `User busy`. */
  causes: string[];
}

export interface Ladder {
  steps: Step[];
  talking: Talking[];
  hungUp: HungUp[];
}

export const PBX = 'PBX';

const REASON: Record<number, string> = {
  0: 'Default status message',
  100: 'Trying',
  180: 'Ringing',
  200: 'OK',
  202: 'Accepted',
  486: 'Busy Here',
  503: 'Service Unavailable',
  603: 'Decline',
};

/** Q.850 cause of an unanswered leg → the far end's SIP final response. */
const RESPONSE_OF_CAUSE: Record<number, number> = { 17: 486, 21: 603, 34: 503 };

/** Fallback when the REFER's NOTIFYs are not known: the echo's state → sipfrag. */
const CODE_OF_STATE: Record<string, number> = {
  channel_progress: 100,
  channel_answered: 200,
  channel_unavailable: 503,
  channel_declined: 603,
};

const NOISE = new Set(['ChannelVarset', 'ChannelDialplan', 'Dial', 'StasisStart', 'StasisEnd', 'BridgeCreated', 'ChannelConnectedLine']);

export function sipStatus(code: number): string {
  return `${code} ${REASON[code] ?? ''}`.trim();
}

/** `call-754c9752-a98f-…` → `call-754c`; other ids unchanged. */
export function shortBridgeId(id: string): string {
  const m = /^(.*?)([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.exec(id);
  return m ? `${m[1]}${m[2]!.slice(0, 4)}` : id;
}

interface ActiveRefer {
  notifies: ReferNotify[];
  next: number;
  /** The phone's NOTIFYs are known (from the REFER's record). */
  known: boolean;
  /** A final NOTIFY went out (or, without NOTIFYs, a final progress echo was seen). */
  done: boolean;
}

class LadderBuilder {
  readonly steps: Step[] = [];
  private readonly members = new Map<string, string[]>();
  private readonly phones = new Map<string, string>();
  private readonly states = new Map<string, string>();
  private readonly outbound = new Set<string>();
  private readonly live = new Set<string>();
  private readonly destroyed = new Set<string>();
  private readonly firstPeer = new Map<string, string>();
  private readonly hangupRequested = new Map<string, { cause?: number; soft?: boolean }>();
  private readonly hangupBy = new Map<string, HangupBy>();
  private readonly pendingRefers = new Map<string, ReferRecord[]>();
  private readonly active = new Map<string, ActiveRefer>();
  private readonly leftOnDestroy = new Map<string, string[]>();
  private readonly hungUp = new Map<string, HungUp>();
  private membersAtRefer = new Map<string, string[]>();
  private referSeen = false;

  constructor(private readonly input: LadderInput) {
    for (const h of input.hangups ?? []) this.hangupBy.set(h.channelId, h.by);
    for (const r of input.refers ?? []) {
      const list = this.pendingRefers.get(r.sourceChannelId) ?? [];
      list.push(r);
      this.pendingRefers.set(r.sourceChannelId, list);
    }
  }

  build(): Ladder {
    const items = mergeTimeline(this.input.events, this.input.requests ?? []).filter(
      (i) => i.kind === 'request' || !NOISE.has(i.event.type),
    );
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (item.kind === 'request') this.onRequest(item.request);
      else if (this.onEvent(item.event, items[i + 1])) i++;
    }
    for (const [source, refer] of this.active) this.flushNotifies(source, refer, refer.notifies.length);
    return { steps: this.steps, talking: this.talking(), hungUp: [...this.hungUp.values()] };
  }

  // ---- naming ------------------------------------------------------------------

  private see(ch: Channel | undefined): void {
    if (!ch) return;
    if (!this.destroyed.has(ch.id)) this.live.add(ch.id);
    if (!this.phones.has(ch.id)) {
      const endpoint = endpointOfChannelName(ch.name);
      this.phones.set(ch.id, this.input.phoneOf(endpoint) ?? endpoint);
    }
  }

  private phone(channelId: string): string {
    return this.phones.get(channelId) ?? channelId;
  }

  /** Phone names of channels, in the order the phones first appeared (the caller first). */
  private names(ids: readonly string[]): string[] {
    const order = [...new Set(this.phones.values())];
    return ids.map((id) => this.phone(id)).sort((a, b) => order.indexOf(a) - order.indexOf(b));
  }

  private others(bridgeId: string, channelId: string): string[] {
    return (this.members.get(bridgeId) ?? []).filter((id) => id !== channelId).map((id) => this.phone(id));
  }

  private bridgeOf(channelId: string): string | undefined {
    for (const [b, ids] of this.members) if (ids.includes(channelId)) return b;
    return undefined;
  }

  private sip(from: string, to: string, message: string, note?: string): void {
    this.steps.push(note ? { kind: 'sip', from, to, message, note } : { kind: 'sip', from, to, message });
  }

  private bridgeStep(bridgeId: string, text: string): void {
    this.steps.push({ kind: 'bridge', bridge: shortBridgeId(bridgeId), text });
  }

  // ---- requests without events ---------------------------------------------------

  private onRequest(r: RequestRecord): void {
    const [, , channelId, what] = r.path.split('/');
    if (!channelId) return;
    const who = this.phone(channelId);
    if (what === 'ring' && r.method === 'POST') {
      if (this.states.get(channelId) === 'Up') this.sip(PBX, who, '♪ ringback tone', `${who} hears ringing`);
      else this.sip(PBX, who, sipStatus(180));
    } else if (what === 'moh' && r.method === 'POST') {
      this.sip(PBX, who, '♪ music on hold', `${who} hears music`);
    } else if (what === 'moh' && r.method === 'DELETE') {
      this.sip(PBX, who, 'music on hold stops');
    }
  }

  // ---- events ----------------------------------------------------------------------

  /** Returns true when it also consumed `next`. */
  private onEvent(e: EmittedEvent, next: TimelineItem | undefined): boolean {
    this.see(e.channel);
    const ch = e.channel;
    switch (e.type) {
      case 'ChannelCreated':
        if (ch) this.onCreated(ch);
        return false;
      case 'ChannelStateChange':
        if (ch) this.onStateChange(ch);
        return false;
      case 'ChannelHold':
      case 'ChannelUnhold':
        if (ch) this.onHold(ch, e.type === 'ChannelHold');
        return false;
      case 'ChannelEnteredBridge':
        if (ch && e.bridge) this.onEntered(e.bridge.id, ch.id);
        return false;
      case 'ChannelLeftBridge':
        return ch && e.bridge ? this.onLeft(e.bridge.id, ch.id, next) : false;
      case 'BridgeDestroyed':
        if (e.bridge) this.onBridgeDestroyed(e.bridge.id);
        return false;
      case 'ChannelTransfer':
        this.onTransfer(e);
        return false;
      case 'ChannelHangupRequest':
        if (ch && !this.hangupRequested.has(ch.id)) {
          this.hangupRequested.set(ch.id, {
            ...(e.cause !== undefined ? { cause: e.cause } : {}),
            ...(e.soft !== undefined ? { soft: e.soft } : {}),
          });
        }
        return false;
      case 'ChannelDestroyed':
        if (ch) this.onDestroyed(ch, e.cause, e.cause_txt);
        return false;
      default:
        return false;
    }
  }

  private onCreated(ch: Channel): void {
    this.states.set(ch.id, ch.state);
    const who = this.phone(ch.id);
    if (ch.state === 'Down') {
      // Placed over ARI (originate): the PBX calls the phone.
      this.outbound.add(ch.id);
      this.sip(PBX, who, `INVITE ${endpointOfChannelName(ch.name)}`, this.transferInProgress() ? 'for the transfer' : 'routed');
      return;
    }
    const exten = ch.dialplan.exten;
    const callee = this.input.phoneOf(exten);
    const legs = [...this.live].filter((id) => id !== ch.id && this.phone(id) === who).length;
    this.sip(who, PBX, `INVITE ${exten}${callee ? ` (${callee})` : ''}`, legs > 0 ? `${who}'s second call` : undefined);
  }

  private onStateChange(ch: Channel): void {
    const before = this.states.get(ch.id);
    this.states.set(ch.id, ch.state);
    if (before === ch.state) return;
    const who = this.phone(ch.id);
    if (this.outbound.has(ch.id)) {
      if (ch.state === 'Ringing') this.sip(who, PBX, sipStatus(180));
      else if (ch.state === 'Up') this.sip(who, PBX, sipStatus(200), `${who} answers`);
    } else if (ch.state === 'Up') {
      this.sip(PBX, who, sipStatus(200));
    }
  }

  private onHold(ch: Channel, on: boolean): void {
    const who = this.phone(ch.id);
    const bridge = this.bridgeOf(ch.id);
    const peers = bridge ? this.others(bridge, ch.id) : [];
    const whom = peers.length ? ` ${peers.join(', ')}` : '';
    this.sip(who, PBX, on ? 're-INVITE (hold)' : 're-INVITE (resume)', on ? `${who} puts${whom} on hold` : `${who} resumes${whom}`);
  }

  private join(bridgeId: string, channelId: string): void {
    const ids = this.members.get(bridgeId) ?? [];
    if (!ids.includes(channelId)) ids.push(channelId);
    this.members.set(bridgeId, ids);
    if (ids.length === 2) {
      const [a, b] = ids as [string, string];
      if (!this.firstPeer.has(a)) this.firstPeer.set(a, this.phone(b));
      if (!this.firstPeer.has(b)) this.firstPeer.set(b, this.phone(a));
    }
  }

  private leave(bridgeId: string, channelId: string): void {
    const ids = this.members.get(bridgeId);
    if (ids) this.members.set(bridgeId, ids.filter((id) => id !== channelId));
  }

  private onEntered(bridgeId: string, channelId: string): void {
    this.join(bridgeId, channelId);
    const ids = this.members.get(bridgeId)!;
    const who = this.phone(channelId);
    if (ids.length === 2) this.bridgeStep(bridgeId, `${this.names(ids).join(' ⇄ ')} talking`);
    else if (ids.length > 2) this.bridgeStep(bridgeId, `${who} joins (with ${this.others(bridgeId, channelId).join(', ')})`);
  }

  private onLeft(bridgeId: string, channelId: string, next: TimelineItem | undefined): boolean {
    this.leave(bridgeId, channelId);
    // Part of a hangup: the hangup's line says it.
    if (this.hangupRequested.has(channelId)) return false;
    const who = this.phone(channelId);
    const n = next?.kind === 'event' ? next.event : undefined;
    if (n?.type === 'ChannelEnteredBridge' && n.channel?.id === channelId && n.bridge) {
      this.join(n.bridge.id, channelId);
      const withWhom = this.others(n.bridge.id, channelId);
      this.bridgeStep(
        bridgeId,
        `${who} leaves  → enters bridge ${shortBridgeId(n.bridge.id)}${withWhom.length ? ` (with ${withWhom.join(', ')})` : ''}`,
      );
      return true;
    }
    if (n?.type === 'BridgeDestroyed' && n.bridge?.id === bridgeId) {
      this.leftOnDestroy.set(bridgeId, [...(this.leftOnDestroy.get(bridgeId) ?? []), who]);
      return false;
    }
    const rest = this.names(this.members.get(bridgeId) ?? []);
    this.bridgeStep(bridgeId, `${who} leaves${rest.length === 2 ? ` → ${rest.join(' ⇄ ')} talking` : ''}`);
    return false;
  }

  private onBridgeDestroyed(bridgeId: string): void {
    const removed = [...(this.leftOnDestroy.get(bridgeId) ?? []), ...(this.members.get(bridgeId) ?? []).map((id) => this.phone(id))];
    this.members.delete(bridgeId);
    this.bridgeStep(bridgeId, `deleted${removed.length ? ` (${removed.join(', ')} taken out)` : ''}`);
  }

  // ---- REFER and NOTIFY --------------------------------------------------------------

  private transferInProgress(): boolean {
    return [...this.active.values()].some((r) => !r.done);
  }

  private onTransfer(e: EmittedEvent): void {
    const source = referSource(e);
    if (!source) return;
    this.see(e.referred_by?.source_channel);
    const active = this.active.get(source);
    if (e.state === undefined) {
      if (active && !active.done) {
        // Asterisk's own second ChannelTransfer: the transferer hung up with the
        // REFER pending, and Asterisk itself sent the phone its final NOTIFY.
        if (active.known) this.flushNotifies(source, active, active.notifies.length);
        else this.sip(PBX, this.phone(source), `NOTIFY SIP/2.0 ${sipStatus(503)}`, 'sent by Asterisk: the transferer hung up');
        active.done = true;
        return;
      }
      this.onRefer(e, source);
      return;
    }
    if (active?.known) {
      // channel_progress: one NOTIFY; a final state: up to the one that terminates.
      let upTo = active.next + 1;
      if (e.state !== 'channel_progress') {
        const end = active.notifies.findIndex((n, i) => i >= active.next && n.subscriptionState === 'terminated');
        upTo = end >= 0 ? end + 1 : active.notifies.length;
      }
      this.flushNotifies(source, active, upTo);
    } else {
      const code = CODE_OF_STATE[e.state];
      const final = e.state !== 'channel_progress';
      if (active && final) active.done = true;
      if (code !== undefined) this.sip(PBX, this.phone(source), `NOTIFY SIP/2.0 ${sipStatus(code)}`, final ? 'subscription terminated' : undefined);
    }
  }

  private onRefer(e: EmittedEvent, source: string): void {
    this.referSeen = true;
    this.membersAtRefer = new Map([...this.members].map(([b, ids]) => [b, [...ids]]));
    const queue = this.pendingRefers.get(source);
    const record = queue?.shift();
    this.active.set(source, { notifies: record ? [...record.notifies] : [], next: 0, known: record !== undefined, done: false });
    const who = this.phone(source);
    const requested = e.refer_to?.requested_destination;
    let target = requested?.destination ?? '?';
    if (requested?.protocol_id) {
      const dest = e.refer_to?.destination_channel;
      const peer = e.refer_to?.connected_channel;
      this.see(dest);
      this.see(peer);
      const dialog = dest && peer ? `${this.phone(dest.id)}↔${this.phone(peer.id)} call` : `Call-ID ${requested.protocol_id}`;
      target += `?Replaces=<${dialog}>`;
    }
    this.sip(who, PBX, `REFER  Refer-To: ${target}`);
    this.sip(PBX, who, sipStatus(202));
  }

  private flushNotifies(source: string, refer: ActiveRefer, upTo: number): void {
    const who = this.phone(source);
    for (; refer.next < Math.min(upTo, refer.notifies.length); refer.next++) {
      const n = refer.notifies[refer.next]!;
      if (n.subscriptionState === 'terminated') refer.done = true;
      this.sip(PBX, who, `NOTIFY SIP/2.0 ${sipStatus(n.code)}`, n.subscriptionState === 'terminated' ? 'subscription terminated' : undefined);
    }
  }

  // ---- hangups -------------------------------------------------------------------------

  private onDestroyed(ch: Channel, cause: number | undefined, causeText: string | undefined): void {
    // The NOTIFYs a transferer's hangup sends come just before its ChannelDestroyed.
    const refer = this.active.get(ch.id);
    if (refer) this.flushNotifies(ch.id, refer, refer.notifies.length);

    const who = this.phone(ch.id);
    const wasUp = this.states.get(ch.id) === 'Up' || ch.state === 'Up';
    const request = this.hangupRequested.get(ch.id);
    const by: HangupBy =
      this.hangupBy.get(ch.id) ?? (request?.soft && request.cause === 32 ? 'ari' : request && request.cause === undefined ? 'phone' : 'asterisk');
    const peer = this.firstPeer.get(ch.id);
    const what = peer ? `call with ${peer}` : this.outbound.has(ch.id) ? 'unanswered leg' : 'call';
    const abnormal = cause !== undefined && cause !== 16 ? causeText ?? `cause ${cause}` : undefined;

    if (by === 'phone') {
      if (wasUp) this.sip(who, PBX, 'BYE', `${who} hangs up (${what})`);
      else {
        const code = cause !== undefined ? RESPONSE_OF_CAUSE[cause] : undefined;
        this.sip(who, PBX, code ? sipStatus(code) : 'CANCEL', abnormal);
      }
    } else {
      const note = by === 'ari' ? `${what}, hung up by ari-transfer` : `${what}${abnormal ? `: ${abnormal}` : ''}`;
      this.sip(PBX, who, wasUp ? 'BYE' : 'CANCEL', note);
    }

    this.live.delete(ch.id);
    this.destroyed.add(ch.id);
    const bridge = this.bridgeOf(ch.id);
    if (bridge) this.leave(bridge, ch.id);
    const entry = this.hungUp.get(who) ?? { phone: who, legs: 0, causes: [] };
    entry.legs++;
    if (abnormal && !entry.causes.includes(abnormal)) entry.causes.push(abnormal);
    this.hungUp.set(who, entry);
  }

  // ---- result ------------------------------------------------------------------------------

  private talking(): Talking[] {
    const out: Talking[] = [];
    for (const [bridge, ids] of this.members) {
      if (ids.length < 2) continue;
      const before = this.membersAtRefer.get(bridge) ?? [];
      const unchanged = this.referSeen && before.length === ids.length && ids.every((id) => before.includes(id));
      out.push({ bridge, parties: this.names(ids), unchanged });
    }
    return out;
  }
}

export function buildLadder(input: LadderInput): Ladder {
  return new LadderBuilder(input).build();
}

/** `Result: alice ⇄ carol talking in call-9f8e; hung up: bob (2 legs)`. */
export function resultLine(ladder: Ladder): string {
  const talking = ladder.talking.map(
    (t) => `${t.parties.join(' ⇄ ')} talking in ${shortBridgeId(t.bridge)}${t.unchanged ? ' (as before the REFER)' : ''}`,
  );
  const hungUp = ladder.hungUp.map(
    (h) => `${h.phone} (${h.legs} leg${h.legs === 1 ? '' : 's'}${h.causes.length ? `: ${h.causes.join(', ')}` : ''})`,
  );
  return `Result: ${talking.length ? talking.join(', ') : 'nobody talking'}; hung up: ${hungUp.length ? hungUp.join(', ') : 'nobody'}`;
}
