// The floor: a bare ARI client that, on each ChannelTransfer, makes the same
// REST calls as the service, one after the other, straight from the event's
// fields. No registry, no planning, no policy, no logging, no undo. What it
// takes is what any client pays for the WebSocket, JSON and HTTP round trips.
import WebSocket from 'ws';
import type { Channel, TransferProgressState } from '../src/ari/models.js';
import type { AriRestClient, OriginateParams } from '../src/ari/rest-client.js';
import { ARI_APP } from './protocol.js';

/** The REST calls the floor makes (the service's client has them all). */
export type FloorRest = Pick<
  AriRestClient,
  'transferProgress' | 'addChannel' | 'removeChannel' | 'hangup' | 'destroyBridge' | 'originate' | 'startRinging' | 'stopRinging'
>;

/** Those calls on Node's global fetch (undici), keep-alive as Node's default. */
export class FetchRest implements FloorRest {
  private readonly base: string;
  private readonly auth: string;

  constructor(url: string, username: string, password: string) {
    this.base = `${url}/ari`;
    this.auth = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  }

  transferProgress(channelId: string, state: TransferProgressState): Promise<void> {
    return this.call('POST', `/channels/${enc(channelId)}/transfer_progress`, { states: state });
  }
  addChannel(bridgeId: string, channelId: string): Promise<void> {
    return this.call('POST', `/bridges/${enc(bridgeId)}/addChannel`, { channel: channelId });
  }
  removeChannel(bridgeId: string, channelId: string): Promise<void> {
    return this.call('POST', `/bridges/${enc(bridgeId)}/removeChannel`, { channel: channelId });
  }
  hangup(channelId: string, reason = 'normal'): Promise<void> {
    return this.call('DELETE', `/channels/${enc(channelId)}`, { reason });
  }
  destroyBridge(bridgeId: string): Promise<void> {
    return this.call('DELETE', `/bridges/${enc(bridgeId)}`);
  }
  startRinging(channelId: string): Promise<void> {
    return this.call('POST', `/channels/${enc(channelId)}/ring`);
  }
  stopRinging(channelId: string): Promise<void> {
    return this.call('DELETE', `/channels/${enc(channelId)}/ring`);
  }
  async originate(p: OriginateParams): Promise<Channel> {
    const query: Record<string, string> = { endpoint: p.endpoint, app: p.app };
    if (p.appArgs !== undefined) query.appArgs = p.appArgs;
    if (p.callerId !== undefined) query.callerId = p.callerId;
    if (p.timeoutSec !== undefined) query.timeout = String(p.timeoutSec);
    if (p.originator !== undefined) query.originator = p.originator;
    await this.call('POST', `/channels/${enc(p.channelId)}`, query);
    return undefined as unknown as Channel; // the floor never reads it
  }

  private async call(method: string, path: string, query?: Record<string, string>): Promise<void> {
    const qs = query ? `?${new URLSearchParams(query).toString()}` : '';
    const res = await fetch(`${this.base}${path}${qs}`, { method, headers: { Authorization: this.auth } });
    await res.arrayBuffer();
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status}`);
  }
}

interface TransferEvent {
  type: 'ChannelTransfer';
  state?: string;
  refer_to: { requested_destination: { destination?: string; protocol_id?: string }; destination_channel?: Channel; bridge?: { id: string } };
  referred_by: { source_channel: Channel; connected_channel?: Channel; bridge?: { id: string } };
}

export class FloorClient {
  /** Transfers whose REST calls all returned. */
  done = 0;
  failed = 0;
  /** `bridgeId/channelId` of the last ChannelEnteredBridge received. */
  lastEntered = '';
  private socket: WebSocket | undefined;
  private readonly answered = new Map<string, () => void>();
  private readonly startedLegs = new Set<string>();
  private legSeq = 0;

  constructor(
    private readonly url: string,
    private readonly username: string,
    private readonly password: string,
    private readonly rest: FloorRest,
  ) {}

  async start(): Promise<void> {
    const auth = Buffer.from(`${this.username}:${this.password}`).toString('base64');
    // subscribeAll as the service connects with ROUTING=none: the same event volume.
    const socket = new WebSocket(`${this.url.replace('http', 'ws')}/ari/events?app=${ARI_APP}&subscribeAll=true`, {
      headers: { Authorization: `Basic ${auth}` },
    });
    socket.on('message', (data) => this.onEvent(JSON.parse(data.toString()) as { type: string }));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    this.socket = socket;
  }

  async stop(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (!socket) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.close();
    });
  }

  sawEntered(bridgeId: string, channelId: string): boolean {
    return this.lastEntered === `${bridgeId}/${channelId}`;
  }

  private onEvent(e: { type: string } & Record<string, unknown>): void {
    switch (e.type) {
      case 'StasisStart': {
        const id = (e.channel as Channel).id;
        const waiter = this.answered.get(id);
        if (waiter) waiter();
        else if (id.startsWith('floor-')) this.startedLegs.add(id);
        return;
      }
      case 'ChannelEnteredBridge':
        this.lastEntered = `${(e.bridge as { id: string }).id}/${(e.channel as Channel | undefined)?.id ?? ''}`;
        return;
      case 'ChannelTransfer': {
        const t = e as unknown as TransferEvent;
        if (t.state !== undefined) return; // Asterisk's echo of our own progress
        const run = t.refer_to.requested_destination.protocol_id ? this.attended(t) : this.blind(t);
        run.then(
          () => this.done++,
          () => this.failed++,
        );
        return;
      }
      default:
        return;
    }
  }

  /** Asterisk resolved Replaces: move the transferee into the target bridge, 200, hang up. */
  private async attended(t: TransferEvent): Promise<void> {
    const source = t.referred_by.source_channel.id;
    const transferee = t.referred_by.connected_channel!.id;
    const fromBridge = t.referred_by.bridge!.id;
    const replaced = t.refer_to.destination_channel!.id;
    const toBridge = t.refer_to.bridge!.id;
    await this.rest.transferProgress(source, 'channel_progress');
    await this.rest.addChannel(toBridge, transferee);
    await this.rest.transferProgress(source, 'channel_answered');
    await this.rest.hangup(replaced);
    await this.rest.hangup(source);
    await this.rest.destroyBridge(fromBridge);
  }

  /** Dial the destination, ring the transferee, join the answered leg, 200, hang up the transferer. */
  private async blind(t: TransferEvent): Promise<void> {
    const source = t.referred_by.source_channel.id;
    const transferee = t.referred_by.connected_channel!;
    const bridge = t.referred_by.bridge!.id;
    const legId = `floor-${++this.legSeq}`;
    // Its StasisStart may come before the originate's response.
    const answered = new Promise<void>((resolve) => {
      if (this.startedLegs.delete(legId)) resolve();
      else this.answered.set(legId, resolve);
    });
    await this.rest.transferProgress(source, 'channel_progress');
    await this.rest.originate({
      channelId: legId,
      endpoint: `PJSIP/${t.refer_to.requested_destination.destination ?? ''}`,
      app: ARI_APP,
      appArgs: 'ari-transfer-leg,transfer',
      callerId: `${transferee.caller.name} <${transferee.caller.number}>`,
      timeoutSec: 35,
      originator: transferee.id,
    });
    await this.rest.startRinging(transferee.id);
    await answered;
    this.answered.delete(legId);
    await this.rest.stopRinging(transferee.id);
    await this.rest.addChannel(bridge, legId);
    await this.rest.removeChannel(bridge, source);
    await this.rest.transferProgress(source, 'channel_answered');
    await this.rest.hangup(source);
  }
}

function enc(id: string): string {
  return encodeURIComponent(id);
}
