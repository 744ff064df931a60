// REFER → NOTIFY latency read from a SIPp phone's own message trace
// (-trace_msg). SIPp stamps every message with gettimeofday() right after
// writing it to its socket, or as it takes it off the socket, to the
// microsecond, in local time: the phone's own view of the transfer, taken
// without any clock of ours. Pure text parsing, unit-tested.
import { parseSippMessages, type SipMessage } from '../../test/integration/sipp-messages.js';

export interface TimedSipMessage extends SipMessage {
  /** When SIPp sent or received it: ms since the epoch (read as UTC); a double, so to about 0.25 µs. */
  at: number;
}

// "----------------------------------------------- 2026-11-21 12:47:57.347030"
const STAMP = /^-{20,} (\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6})\s*$/m;
const STAMP_FIELDS = 7;

/**
 * Every message of the trace with its time stamp. The stamp is local time
 * read as if it were UTC: differences are right (except across a DST
 * change), absolute values are off by the time zone.
 */
export function timedSippMessages(trace: string): TimedSipMessage[] {
  // split() with a capturing pattern interleaves the captured fields with the blocks.
  const parts = trace.split(new RegExp(STAMP.source, 'm'));
  const out: TimedSipMessage[] = [];
  for (let i = 1; i + STAMP_FIELDS < parts.length; i += STAMP_FIELDS + 1) {
    const [year, month, day, hour, minute, second, micros] = parts.slice(i, i + STAMP_FIELDS).map(Number) as [number, number, number, number, number, number, number];
    const at = Date.UTC(year, month - 1, day, hour, minute, second) + micros / 1000;
    for (const message of parseSippMessages(parts[i + STAMP_FIELDS] ?? '')) out.push({ ...message, at });
  }
  return out;
}

export interface ReferTiming {
  /** SIP Call-ID of the dialog the REFER was sent in. */
  callId: string;
  /** When the phone first sent it (a retransmission keeps the first time). */
  sentAt: number;
  /** Each sipfrag status the phone then got in a NOTIFY of that dialog, with ms since the REFER; first arrival only. */
  notifies: { status: number; afterMs: number }[];
}

/** One entry per REFER the phone sent (per dialog and CSeq), in order. */
export function referTimings(messages: readonly TimedSipMessage[]): ReferTiming[] {
  const refers = new Map<string, ReferTiming>();
  for (const m of messages) {
    if (m.direction !== 'sent' || m.method !== 'REFER' || m.callId === undefined) continue;
    const key = `${m.callId} ${m.headers.get('cseq') ?? ''}`;
    if (!refers.has(key)) refers.set(key, { callId: m.callId, sentAt: m.at, notifies: [] });
  }
  const timings = [...refers.values()];
  for (const timing of timings) {
    const next = timings.find((t) => t !== timing && t.callId === timing.callId && t.sentAt > timing.sentAt);
    for (const m of messages) {
      if (m.direction !== 'received' || m.method !== 'NOTIFY' || m.callId !== timing.callId) continue;
      if (m.at < timing.sentAt || (next && m.at >= next.sentAt)) continue;
      const status = sipfragStatus(m);
      if (status === undefined || timing.notifies.some((n) => n.status === status)) continue;
      timing.notifies.push({ status, afterMs: m.at - timing.sentAt });
    }
  }
  return timings;
}

/** ms from the phone's (only, or first) REFER to the first NOTIFY carrying sipfrag `status`; undefined if it never came. */
export function referLatencyMs(trace: string, status = 200): number | undefined {
  const [first] = referTimings(timedSippMessages(trace));
  return first?.notifies.find((n) => n.status === status)?.afterMs;
}

function sipfragStatus(m: SipMessage): number | undefined {
  if (!/message\/sipfrag/i.test(m.headers.get('content-type') ?? '')) return undefined;
  const match = /^SIP\/2\.0 (\d{3})/.exec(m.body);
  return match ? Number(match[1]) : undefined;
}
