// A load round on the real Asterisk and the real service: 30 calls up at
// once, every one of them transferred, blind and attended interleaved, as a
// busy contact centre would see them. Each SIPp phone plays many calls in one
// process on one port:
//   1001 (alice) calls 1002 20 times; 1002 (bob) answers each and REFERs it
//     blind to 1003;
//   1001 again, from a second port (alice2), calls 1004 10 times; 1004 (dave)
//     answers each, places a consultation call to 1003 from the consultation
//     port (the 3PCC pair, matched call by call by their command Call-IDs) and
//     REFERs alice2 to it with Replaces;
//   1003 (carol) answers all 30 transfer targets (20 legs the service places,
//     10 consultation calls).
// 30 calls with two legs each need 120 RTP ports at the very least: the old
// rtp.conf range (10000-10099) answered such a round with 488 Not Acceptable
// Here and failed every transfer leg. Also prints how long each transferer
// waits from its REFER to the NOTIFY 200 (informational, never asserted).
import { createSocket } from 'node:dgram';
import { expect, it } from 'vitest';
import WebSocket from 'ws';
import type { AsteriskTarget } from './asterisk-target.js';
import { exitOf, type SippPhone } from './phones.js';
import { scenarios, until } from './harness.js';
import { parseTimedSippMessages, received, receivedSipfrags, type SipMessage, type TimedSipMessage as TimedMessage } from './sipp-messages.js';

const BLIND = 20;
const ATTENDED = 10;
const CALLS = BLIND + ATTENDED;

const listening = () => new Promise((r) => setTimeout(r, 300));

/** A UDP port free on loopback now: for the second calling phone, which no call is routed to. */
async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => socket.once('error', reject).bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** A phone's messages with the time sipp logged each one. */
function timedMessages(phone: SippPhone): TimedMessage[] {
  return parseTimedSippMessages(phone.trace());
}

/** Waits until all `phones` have ended their scenarios, or `ms` have passed (what they saw tells why). */
async function finished(phones: SippPhone[], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(phones.map((p) => p.exited)), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/** Each failure response (3xx-6xx) the phone sent or received, once per dialog: "1004 received 488 (INVITE)". */
function failureResponses(phone: SippPhone): string[] {
  const perDialog = new Map<string, string>();
  for (const m of phone.messages()) {
    if (m.status !== undefined && m.status >= 300) perDialog.set(`${m.callId} ${m.direction} ${m.status}`, `${phone.options.phone} ${m.direction} ${m.status} (${m.cseqMethod})`);
  }
  return [...perDialog.values()];
}

/** For each dialog in which the phone sent a REFER: the sipfrags it then received, in order. */
function sipfragsPerRefer(messages: SipMessage[]): number[][] {
  const referDialogs = new Set(messages.filter((m) => m.direction === 'sent' && m.method === 'REFER').map((m) => m.callId));
  return [...referDialogs].map((callId) => receivedSipfrags(messages.filter((m) => m.callId === callId)));
}

/** How many BYEs the phone received in each of its dialogs that got any. */
function byesPerDialog(messages: SipMessage[]): number[] {
  const counts = new Map<string | undefined, number>();
  for (const bye of received(messages, 'BYE')) counts.set(bye.callId, (counts.get(bye.callId) ?? 0) + 1);
  return [...counts.values()];
}

/** ms from each REFER sent to the NOTIFY carrying sipfrag `status` in the same dialog. */
function referLatencies(messages: TimedMessage[], status: number): number[] {
  const out: number[] = [];
  for (const refer of messages.filter((m) => m.direction === 'sent' && m.method === 'REFER')) {
    const notify = messages.find(
      (m) => m.callId === refer.callId && m.direction === 'received' && m.method === 'NOTIFY' && m.at >= refer.at && receivedSipfrags([m])[0] === status,
    );
    if (notify) out.push(notify.at - refer.at);
  }
  return out;
}

function summary(ms: number[]): string {
  if (ms.length === 0) return 'no samples';
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!.toFixed(1);
  return `median ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${sorted[sorted.length - 1]!.toFixed(1)} ms (${ms.length} REFERs)`;
}

/** The fields of the ARI events BridgeHistory reads. */
interface WatchedEvent {
  type: string;
  channel?: { id: string; name: string; protocol_id?: string };
  bridge?: { channels: string[] };
}

interface ChannelSeen {
  name: string;
  /** SIP Call-ID of the channel's dialog. */
  protocolId: string;
  /** Every channel it ever shared a bridge with. */
  peers: Set<string>;
}

/**
 * Who has shared a bridge with whom during the round, from Asterisk's own
 * events (a second ARI application subscribed to everything): the state
 * before each transfer, which the final ARI state no longer shows.
 */
class BridgeHistory {
  readonly channels = new Map<string, ChannelSeen>();
  live = 0;
  peakChannels = 0;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => this.onEvent(JSON.parse(data.toString()) as WatchedEvent));
  }

  static async open(t: AsteriskTarget): Promise<BridgeHistory> {
    const app = `load-observer-${process.pid}`;
    const ws = new WebSocket(`${t.ariUrl.replace(/^http/, 'ws')}/ari/events?app=${app}&subscribeAll=true`, {
      headers: { authorization: `Basic ${Buffer.from(`${t.username}:${t.password}`).toString('base64')}` },
    });
    await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));
    return new BridgeHistory(ws);
  }

  close(): void {
    this.ws.close();
  }

  private seen(channel: NonNullable<WatchedEvent['channel']>): ChannelSeen {
    let c = this.channels.get(channel.id);
    if (!c) this.channels.set(channel.id, (c = { name: channel.name, protocolId: '', peers: new Set() }));
    if (channel.protocol_id) c.protocolId = channel.protocol_id;
    return c;
  }

  private onEvent({ type, channel, bridge }: WatchedEvent): void {
    if (!channel) return;
    if (type === 'ChannelCreated') {
      this.seen(channel);
      this.peakChannels = Math.max(this.peakChannels, ++this.live);
    } else if (type === 'ChannelDestroyed') {
      this.live--;
    } else if (type === 'ChannelEnteredBridge' && bridge) {
      const entered = this.seen(channel);
      for (const other of bridge.channels) {
        if (other === channel.id) continue;
        entered.peers.add(other);
        this.channels.get(other)?.peers.add(channel.id);
      }
    }
  }

  /** The channel of a SIP dialog. */
  byCallId(callId: string): string | undefined {
    return [...this.channels].find(([, c]) => c.protocolId === callId)?.[0];
  }

  /** The peers of `id` that were phone `ext`'s channels. */
  peersOf(id: string | undefined, ext: string): string[] {
    return [...(this.channels.get(id ?? '')?.peers ?? [])].filter((p) => this.channels.get(p)?.name.startsWith(`PJSIP/${ext}-`));
  }
}

scenarios('transfers under load on a real Asterisk', {}, (ctx) => {
  const { ari } = ctx;

  it(`${CALLS} calls up at once, ${BLIND} transferred blind and ${ATTENDED} attended: every REFER ends 100 then 200, every transferee talks to its target, nothing left`, async () => {
    const history = await BridgeHistory.open(ctx.t);
    try {
      const carol = ctx.phone({ scenario: 'uas_answer.xml', phone: '1003', calls: CALLS });
      const bob = ctx.phone({
        scenario: 'uas_blind_referer.xml',
        phone: '1002',
        calls: BLIND,
        keys: { refer_to: '1003', refer_params: '', refer_extra_header: 'X-Scenario: load' },
      });
      // Side B of dave's 3PCC pair listens on the 3PCC socket: start it first.
      const daveConsult = ctx.phone({
        scenario: 'uac_att_consult.xml',
        phone: '1004',
        port: 'consult',
        call: '1003',
        calls: ATTENDED,
        keys: { consult_ms: '2000' },
        threePcc: true,
      });
      await listening();
      const dave = ctx.phone({ scenario: 'uas_att_referer.xml', phone: '1004', calls: ATTENDED, keys: { refer_target: '1003' }, threePcc: true });
      await listening();
      const alice = ctx.phone({ scenario: 'uac_call_wait_bye.xml', phone: '1001', call: '1002', calls: BLIND, rate: 20 });
      const alice2 = ctx.phone({ scenario: 'uac_call_wait_bye.xml', phone: '1001', port: await freeUdpPort(), call: '1004', calls: ATTENDED, rate: 10 });

      const phones = [alice, alice2, bob, dave, daveConsult, carol];

      // The transferers' scenarios end once every REFER is over and their calls are hung up.
      await finished([bob, dave, daveConsult], 30_000);
      // No call was refused anywhere: the old RTP range answered 488 here.
      expect(phones.flatMap(failureResponses)).toEqual([]);
      expect(sipfragsPerRefer(bob.messages())).toEqual(Array(BLIND).fill([100, 200]));
      expect(sipfragsPerRefer(dave.messages())).toEqual(Array(ATTENDED).fill([100, 200]));
      expect([bob, dave, daveConsult].map((p) => p.exitCode)).toEqual([0, 0, 0]);
      // The service hung up every consultation call after its transfer.
      expect(byesPerDialog(daveConsult.messages())).toEqual(Array(ATTENDED).fill(1));

      // All 30 calls up at once, each transferee with a target, no transferer left.
      await until('every transferee to share a bridge with its target', async () => (await ari.bridges()).length === CALLS && (await ari.channels()).length === 2 * CALLS, 15_000, ctx.explain);
      expect(await ari.bridgedPhones()).toEqual(Array(CALLS).fill(['1001', '1003']));
      // Every target leg was placed and answered: carol took 30 calls (20 legs the service originated, 10 consultation calls).
      expect(new Set(received(carol.messages(), 'INVITE').map((m) => m.callId)).size).toBe(CALLS);

      // Blind: each alice talks to a leg placed to 1003 (above). Attended: each
      // alice2 talks to the very carol call dave consulted, the one whose
      // dialog his REFER's Replaces named (its Call-ID is the consultation's).
      const bridges = await ari.bridges();
      const together = (a: string | undefined, b: string | undefined) => bridges.some((br) => a !== undefined && b !== undefined && br.channels.includes(a) && br.channels.includes(b));
      const pairs = dave
        .messages()
        .filter((m) => m.direction === 'sent' && m.method === 'REFER')
        .map((refer) => {
          const replaces = decodeURIComponent(/Replaces=([^;%>]+)/.exec(refer.headers.get('refer-to') ?? '')?.[1] ?? '');
          const [transferee] = history.peersOf(history.byCallId(refer.callId ?? ''), '1001');
          const [target] = history.peersOf(history.byCallId(replaces), '1003');
          return { refer: refer.callId, transferee, target };
        });
      expect(pairs.filter((p) => !together(p.transferee, p.target))).toEqual([]);

      console.log(
        `load round: ${CALLS} calls, at most ${history.peakChannels} channels at once\n` +
          `  blind REFER -> NOTIFY 100: ${summary(referLatencies(timedMessages(bob), 100))}\n` +
          `  blind REFER -> NOTIFY 200: ${summary(referLatencies(timedMessages(bob), 200))}\n` +
          `  attended REFER -> NOTIFY 200: ${summary(referLatencies(timedMessages(dave), 200))}`,
      );

      await ctx.hangUp('1001');
      expect(await exitOf(alice, 15_000)).toBe(0);
      expect(await exitOf(alice2, 15_000)).toBe(0);
      expect(await exitOf(carol, 15_000)).toBe(0);
      expect(byesPerDialog(alice.messages())).toEqual(Array(BLIND).fill(1));
      expect(byesPerDialog(alice2.messages())).toEqual(Array(ATTENDED).fill(1));
      expect(byesPerDialog(carol.messages())).toEqual(Array(CALLS).fill(1));
      await ctx.expectNothingLeft();
    } finally {
      history.close();
    }
  });
});
