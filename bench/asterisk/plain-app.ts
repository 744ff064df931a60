// The "plain" ARI application the service is measured against on the real
// Asterisk: what anyone would write with ws and fetch in an afternoon. It
// routes the phones' calls (so that there is something to transfer) and, on
// each state-less ChannelTransfer, makes the transfer's REST calls one after
// the other, awaiting each, straight from the event: no registry, no
// planning, no policy, no undo, no parallelism, no logging.
//
// Run by `npm run bench:asterisk` as a process of its own, like the service
// (plain-main.ts). It reports, per transfer, the wall-clock time each step's
// REST call returned, for the report. The benchmark tears the calls down
// itself between transfers.
import WebSocket from 'ws';
import { AriHttp } from './ari-http.js';

interface Channel {
  id: string;
  caller: { name: string; number: string };
  dialplan?: { exten: string };
}

interface TransferEvent {
  state?: string;
  refer_to: { requested_destination: { destination?: string; protocol_id?: string }; destination_channel?: Channel; bridge?: { id: string } };
  referred_by: { source_channel: Channel & { protocol_id?: string }; connected_channel?: Channel; bridge?: { id: string } };
}

/** What the benchmark reads from stdout: when each step of one transfer was done. */
export interface PlainTimeline {
  kind: 'attended' | 'blind';
  /** SIP Call-ID of the dialog the REFER came in. */
  callId: string;
  /** Wall-clock ms (µs precision) at which the ChannelTransfer was read off the socket. */
  eventAt: number;
  /** Wall-clock ms at which each named step's REST call returned (or the awaited event came). */
  marks: Record<string, number>;
  error?: string;
}

// Channel ids we choose, so that our own legs are known when they enter Stasis.
const ROUTED_LEG = 'plain-call-';
const TRANSFER_LEG = 'plain-xfer-';
const ANSWER_DEADLINE_MS = 30_000;

const wallClock = () => performance.timeOrigin + performance.now();

export class PlainApp {
  private socket: WebSocket | undefined;
  private seq = 0;
  /** Routed leg id → the caller waiting for it. */
  private readonly callers = new Map<string, string>();
  /** Transfer leg id → resolves when it answers (enters Stasis); set before the leg is originated. */
  private readonly answered = new Map<string, () => void>();

  constructor(
    private readonly ari: AriHttp,
    private readonly app: string,
    private readonly report: (timeline: PlainTimeline) => void,
  ) {}

  /** Resolves once the events WebSocket is open; `onClose` is called if it closes unasked. */
  async start(onClose: () => void): Promise<void> {
    const socket = new WebSocket(this.ari.eventsUrl(this.app), { headers: { Authorization: this.ari.authorization } });
    socket.on('message', (data) => this.onEvent(JSON.parse(data.toString()) as { type: string } & Record<string, unknown>));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    socket.on('close', () => {
      if (this.socket === socket) onClose();
    });
    this.socket = socket;
  }

  stop(): void {
    const socket = this.socket;
    this.socket = undefined;
    socket?.close();
  }

  private onEvent(e: { type: string } & Record<string, unknown>): void {
    const at = wallClock();
    if (e.type === 'StasisStart') this.onStasisStart(e.channel as Channel);
    else if (e.type === 'ChannelTransfer' && (e as unknown as TransferEvent).state === undefined) this.onTransfer(e as unknown as TransferEvent, at);
    // Everything else, including Asterisk's echoes of our own progress (with a state), is ignored.
  }

  private onStasisStart(channel: Channel): void {
    if (channel.id.startsWith(ROUTED_LEG)) void this.connect(channel.id).catch(warn);
    else if (channel.id.startsWith(TRANSFER_LEG)) this.answered.get(channel.id)?.();
    else void this.route(channel).catch(warn);
  }

  /** A phone called: dial the number it called; the call is connected when that leg answers. */
  private async route(caller: Channel): Promise<void> {
    const legId = `${ROUTED_LEG}${++this.seq}`;
    this.callers.set(legId, caller.id);
    await this.ari.post(`/channels/${enc(legId)}`, {
      endpoint: `PJSIP/${caller.dialplan?.exten ?? ''}`,
      app: this.app,
      callerId: `${caller.caller.name} <${caller.caller.number}>`,
      timeout: '30',
      originator: caller.id,
    });
  }

  /** The callee answered: both in a new bridge, then the caller answered. */
  private async connect(calleeId: string): Promise<void> {
    const callerId = this.callers.get(calleeId);
    this.callers.delete(calleeId);
    if (!callerId) return;
    const bridgeId = `plain-bridge-${++this.seq}`;
    await this.ari.post(`/bridges/${enc(bridgeId)}`, { type: 'mixing' });
    await this.ari.post(`/bridges/${enc(bridgeId)}/addChannel`, { channel: `${callerId},${calleeId}` });
    await this.ari.post(`/channels/${enc(callerId)}/answer`);
  }

  private onTransfer(t: TransferEvent, eventAt: number): void {
    const kind = t.refer_to.requested_destination.protocol_id ? 'attended' : 'blind';
    const timeline: PlainTimeline = { kind, callId: t.referred_by.source_channel.protocol_id ?? '', eventAt, marks: {} };
    const mark = (name: string) => (timeline.marks[name] = wallClock());
    const run = kind === 'attended' ? this.attended(t, mark) : this.blind(t, mark);
    void run
      .catch((err: unknown) => (timeline.error = err instanceof Error ? err.message : String(err)))
      .finally(() => this.report(timeline));
  }

  /** Asterisk resolved Replaces: move the transferee into the target's bridge, 200, hang up the transferer's two legs. */
  private async attended(t: TransferEvent, mark: (step: string) => void): Promise<void> {
    const source = t.referred_by.source_channel.id;
    const transferee = required(t.referred_by.connected_channel, 'referred_by.connected_channel').id;
    const fromBridge = required(t.referred_by.bridge, 'referred_by.bridge').id;
    const replaced = required(t.refer_to.destination_channel, 'refer_to.destination_channel').id;
    const toBridge = required(t.refer_to.bridge, 'refer_to.bridge').id;
    await this.progress(source, 'channel_progress');
    mark('progress100');
    await this.ari.post(`/bridges/${enc(toBridge)}/addChannel`, { channel: transferee });
    mark('moved');
    await this.progress(source, 'channel_answered');
    mark('progress200');
    await this.ari.delete(`/channels/${enc(replaced)}`);
    await this.ari.delete(`/channels/${enc(source)}`);
    await this.ari.delete(`/bridges/${enc(fromBridge)}`);
  }

  /** Dial the destination, wait for it to answer, put it with the transferee, 200, hang up the transferer. */
  private async blind(t: TransferEvent, mark: (step: string) => void): Promise<void> {
    const source = t.referred_by.source_channel.id;
    const transferee = required(t.referred_by.connected_channel, 'referred_by.connected_channel');
    const bridge = required(t.referred_by.bridge, 'referred_by.bridge').id;
    const legId = `${TRANSFER_LEG}${++this.seq}`;
    // Its StasisStart may come before the originate's response: listen from now on.
    const answered = this.answerOf(legId);
    await this.progress(source, 'channel_progress');
    mark('progress100');
    await this.ari.post(`/channels/${enc(legId)}`, {
      endpoint: `PJSIP/${t.refer_to.requested_destination.destination ?? ''}`,
      app: this.app,
      callerId: `${transferee.caller.name} <${transferee.caller.number}>`,
      timeout: '30',
      originator: transferee.id,
    });
    mark('originated');
    if (!(await answered)) {
      await this.progress(source, 'channel_unavailable');
      await this.ari.delete(`/channels/${enc(legId)}`).catch(warn);
      throw new Error(`transfer target ${legId} did not answer within ${ANSWER_DEADLINE_MS} ms`);
    }
    mark('targetAnswered');
    await this.ari.post(`/bridges/${enc(bridge)}/addChannel`, { channel: legId });
    mark('moved');
    await this.progress(source, 'channel_answered');
    mark('progress200');
    await this.ari.delete(`/channels/${enc(source)}`);
  }

  /** true once the leg enters Stasis (it answered), false after the deadline. */
  private answerOf(legId: string): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.answered.delete(legId);
        resolve(false);
      }, ANSWER_DEADLINE_MS);
      this.answered.set(legId, () => {
        clearTimeout(timer);
        this.answered.delete(legId);
        resolve(true);
      });
    });
  }

  private progress(channelId: string, state: string): Promise<unknown> {
    return this.ari.post(`/channels/${enc(channelId)}/transfer_progress`, { states: state });
  }
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`ChannelTransfer without ${what}`);
  return value;
}

function enc(id: string): string {
  return encodeURIComponent(id);
}

function warn(err: unknown): void {
  process.stderr.write(`plain-app: ${err instanceof Error ? err.message : String(err)}\n`);
}
