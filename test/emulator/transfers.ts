// REFER handling in PJSIP `ari-only` mode: the phone's REFER gets 202 and the app
// a ChannelTransfer; `transfer_progress` becomes NOTIFYs (sipfrags) on the implicit
// subscription plus an echo ChannelTransfer. Rules from the traces' README table.

import type { ReferTo, ReferredBy, TransferProgressState } from '../../src/ari/models.js';
import { build } from './events.js';
import type { AriState } from './state.js';
import type { ChannelRecord, ReferHandle, ReferNotify, ReferSpec } from './types.js';
import { pollUntil } from './util.js';

export const TRANSFER_STATES: readonly TransferProgressState[] = [
  'channel_progress',
  'channel_answered',
  'channel_unavailable',
  'channel_declined',
];

/** sipfrag code and whether the state ends the subscription (README table). */
const NOTIFY_FOR: Record<TransferProgressState, { code: number; terminates: boolean }> = {
  channel_progress: { code: 100, terminates: false },
  channel_answered: { code: 200, terminates: true },
  channel_unavailable: { code: 503, terminates: true },
  channel_declined: { code: 603, terminates: true },
};

class Refer implements ReferHandle {
  readonly sipfrags: number[] = [];
  readonly notifies: ReferNotify[] = [];
  terminated = false;
  /** An effective transfer_progress call was made. */
  progressSent = false;
  /** The `state` of the last echo ChannelTransfer. */
  lastState?: string;
  expiryTimer?: NodeJS.Timeout;

  constructor(
    readonly id: string,
    readonly sourceChannelId: string,
    readonly spec: ReferSpec,
  ) {}

  get kind(): 'blind' | 'attended' {
    return this.spec.kind;
  }

  get destination(): string {
    return this.spec.destination;
  }

  notify(code: number, terminates: boolean): void {
    this.sipfrags.push(code);
    this.notifies.push({ code, subscriptionState: terminates ? 'terminated' : 'active' });
    if (terminates) this.terminated = true;
  }

  async waitForTermination(timeoutMs = 2000): Promise<number[]> {
    await pollUntil(
      () => this.terminated,
      timeoutMs,
      `REFER ${this.id} on ${this.sourceChannelId} to be terminated`,
      () => `sipfrags received so far: [${this.sipfrags.join(', ')}]`,
    );
    return [...this.sipfrags];
  }
}

export class TransferManager {
  readonly refers: Refer[] = [];
  private seq = 0;

  constructor(private readonly state: AriState) {
    state.beforeDestroy.push((ch) => this.onSourceGone(ch));
  }

  /**
   * The phone sends REFER on `sourceChannelId`'s dialog. Asterisk answers 202 at once
   * and publishes a ChannelTransfer without `state` (all traces). No NOTIFY is sent
   * until the app calls transfer_progress (blind-noprogress).
   */
  sendRefer(sourceChannelId: string, spec: ReferSpec): ReferHandle {
    const src = this.state.channels.get(sourceChannelId);
    if (!src || src.hangingUp) throw new Error(`ARI emulator: sendRefer: no live channel ${sourceChannelId}`);
    if (src.tech !== 'PJSIP' || !src.dialog) {
      throw new Error(`ARI emulator: sendRefer: ${src.name} has no SIP dialog (only PJSIP channels receive REFER)`);
    }
    if (src.state !== 'Up') throw new Error(`ARI emulator: sendRefer: ${src.name} is not answered (state ${src.state})`);

    const refer = new Refer(`refer-${++this.seq}`, sourceChannelId, spec);
    this.refers.push(refer);
    this.emitTransfer(refer, src);

    // The implicit subscription expires after the REFER's Expires (600 s default, 202 echoes it):
    // NOTIFY terminated with pjproject's "SIP/2.0 0 Default status message", no ARI event
    // (blind-expires, blind-noprogress-long).
    const expiresSec = spec.expires ?? 600;
    refer.expiryTimer = this.state.scheduler.afterUnref(expiresSec * 1000, () => {
      if (!refer.terminated) refer.notify(0, true);
    });
    return refer;
  }

  /**
   * An accepted `transfer_progress` (the REST layer has validated channel and states).
   * Applies to the newest REFER on the channel whose subscription is still active;
   * decided (no trace with two REFERs on one channel). Returns false when ignored.
   */
  transferProgress(channelId: string, state: TransferProgressState): boolean {
    const refer = [...this.refers].reverse().find((r) => r.sourceChannelId === channelId && !r.terminated);
    if (!refer) return false; // no REFER pending, or already terminated: 204, no NOTIFY, no event (blind-declined)
    const { code, terminates } = NOTIFY_FOR[state];
    if (terminates && !refer.progressSent) {
      refer.notify(100, false); // blind-unavailable: Asterisk sends 100 Trying by itself first
    }
    refer.notify(code, terminates);
    refer.progressSent = true;
    if (terminates) this.state.scheduler.cancel(refer.expiryTimer);
    const src = this.state.channels.get(channelId);
    // The echo says channel_declined for channel_unavailable (blind-unavailable).
    refer.lastState = state === 'channel_unavailable' ? 'channel_declined' : state;
    if (src) this.emitTransfer(refer, src, refer.lastState);
    return true;
  }

  /**
   * The transferer channel hangs up while its REFER subscription is active: one more
   * ChannelTransfer, just before ChannelDestroyed (after StasisEnd), carrying the state of
   * the last echo, and the phone's subscription ends with 503.
   * No progress sent yet: NOTIFY 100 + 503, the event has no `state` (blind-noprogress,
   * blind-bye-before-progress). After channel_progress: NOTIFY 503 only, the event says
   * `channel_progress` (blind-bye-after-progress).
   */
  private onSourceGone(ch: ChannelRecord): void {
    for (const refer of this.refers) {
      if (refer.sourceChannelId !== ch.id || refer.terminated) continue;
      this.state.scheduler.cancel(refer.expiryTimer);
      if (!refer.progressSent) refer.notify(100, false);
      refer.notify(503, true);
      this.emitTransfer(refer, ch, refer.lastState);
    }
  }

  private emitTransfer(refer: Refer, src: ChannelRecord, state?: string): void {
    this.state.hub.emit(build.channelTransfer(this.referTo(refer.spec), this.referredBy(src), state), {
      channels: [src.id],
      app: src.app,
    });
  }

  /** Fresh resolution every time: what has changed since drops out (attended channel_answered echo). */
  private referTo(spec: ReferSpec): ReferTo {
    if (spec.kind === 'blind') return { requested_destination: { destination: spec.destination } };
    const { callId, fromTag, toTag } = spec.replaces;
    const referTo: ReferTo = {
      requested_destination: {
        destination: spec.destination,
        protocol_id: callId,
        additional_protocol_params: [
          { parameter_name: 'from', parameter_value: fromTag },
          { parameter_name: 'to', parameter_value: toTag },
        ],
      },
    };
    if (spec.resolvable === false) return referTo;
    // pjsip_ua_find_dialog(call-id, local tag = to-tag, remote tag = from-tag)
    const dest = this.state.findByDialog(callId, toTag, fromTag);
    if (!dest) return referTo;
    referTo.destination_channel = this.state.snap(dest);
    const peer = this.state.twoPartyPeer(dest);
    if (peer) referTo.connected_channel = this.state.snap(peer);
    const bridge = dest.bridgeId ? this.state.bridges.get(dest.bridgeId) : undefined;
    if (bridge) referTo.bridge = this.state.bsnap(bridge);
    return referTo;
  }

  private referredBy(src: ChannelRecord): ReferredBy {
    const by: ReferredBy = { source_channel: this.state.snap(src) };
    const peer = this.state.twoPartyPeer(src);
    if (peer) by.connected_channel = this.state.snap(peer);
    const bridge = src.bridgeId ? this.state.bridges.get(src.bridgeId) : undefined;
    if (bridge) by.bridge = this.state.bsnap(bridge);
    return by;
  }
}
