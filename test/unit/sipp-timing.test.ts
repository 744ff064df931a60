// The real-Asterisk benchmark's reading of SIPp's message time stamps
// (bench/asterisk/sipp-timing.ts): on a log SIPp wrote against a real
// Asterisk, and on small hand-made traces for the awkward cases.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { referLatencyMs, referTimings, timedSippMessages } from '../../bench/asterisk/sipp-timing.js';

const fixture = readFileSync(new URL('../fixtures/sipp/attended.bob-first.sipp-messages.txt', import.meta.url), 'utf8');

function stamp(time: string): string {
  return `----------------------------------------------- 2026-11-21 ${time}`;
}

function request(direction: 'sent' | 'received', time: string, method: string, callId: string, cseq: string, body?: string): string {
  const head = [
    stamp(time),
    direction === 'sent' ? 'UDP message sent (300 bytes):' : 'UDP message received [300] bytes :',
    '',
    `${method} sip:x@127.0.0.1:5060 SIP/2.0`,
    `Call-ID: ${callId}`,
    `CSeq: ${cseq}`,
    ...(body ? ['Content-Type: message/sipfrag;version=2.0', `Content-Length: ${body.length}`] : ['Content-Length: 0']),
    '',
  ];
  return `${[...head, ...(body ? [body, ''] : [])].join('\n')}\n`;
}

const refer = (time: string, callId = 'a@h', cseq = '101 REFER') => request('sent', time, 'REFER', callId, cseq);
const notify = (time: string, sipfrag: string, callId = 'a@h', cseq = '1 NOTIFY') => request('received', time, 'NOTIFY', callId, cseq, sipfrag);

describe('SIPp message time stamps', () => {
  it('gives every message of a real trace its time, to the microsecond', () => {
    const messages = timedSippMessages(fixture);
    expect(messages.map((m) => m.method ?? m.status)).toEqual(['INVITE', 100, 200, 'ACK', 'REFER', 202, 'NOTIFY', 200, 'NOTIFY', 200, 'BYE', 200]);
    const [invite, trying] = messages;
    expect(trying!.at - invite!.at).toBeCloseTo(0.362, 3);
  });

  it('measures REFER sent → NOTIFY 100 and → NOTIFY 200 received on a real trace', () => {
    expect(referTimings(timedSippMessages(fixture))).toEqual([
      {
        callId: '1-22442@127.0.0.1',
        sentAt: expect.any(Number),
        notifies: [
          { status: 100, afterMs: expect.closeTo(2.846, 3) },
          { status: 200, afterMs: expect.closeTo(9.909, 3) },
        ],
      },
    ]);
    expect(referLatencyMs(fixture)).toBeCloseTo(9.909, 3);
    expect(referLatencyMs(fixture, 100)).toBeCloseTo(2.846, 3);
  });

  it('times a retransmitted REFER from its first sending, and a retransmitted NOTIFY from its first arrival', () => {
    const trace = [refer('10:00:00.000100'), refer('10:00:00.500100'), notify('10:00:00.503100', 'SIP/2.0 100 Trying'), notify('10:00:00.510100', 'SIP/2.0 200 OK'), notify('10:00:01.010100', 'SIP/2.0 200 OK')].join('');
    expect(referTimings(timedSippMessages(trace))).toEqual([
      {
        callId: 'a@h',
        sentAt: expect.any(Number),
        notifies: [
          { status: 100, afterMs: expect.closeTo(503, 3) },
          { status: 200, afterMs: expect.closeTo(510, 3) },
        ],
      },
    ]);
  });

  it('has no latency when the transfer failed or the phone never heard the end', () => {
    expect(referLatencyMs([refer('10:00:00.000000'), notify('10:00:00.002000', 'SIP/2.0 100 Trying'), notify('10:00:00.009000', 'SIP/2.0 503 Service Unavailable')].join(''))).toBeUndefined();
    expect(referLatencyMs(refer('10:00:00.000000'))).toBeUndefined();
    expect(referLatencyMs('')).toBeUndefined();
  });

  it('keeps NOTIFYs to their own dialog and to the REFER they follow', () => {
    const trace = [
      notify('09:59:59.000000', 'SIP/2.0 200 OK'), // before any REFER: not this transfer's
      refer('10:00:00.000000', 'a@h', '101 REFER'),
      notify('10:00:00.001000', 'SIP/2.0 200 OK', 'other@h'), // another dialog
      notify('10:00:00.004000', 'SIP/2.0 200 OK'),
      refer('10:00:01.000000', 'a@h', '102 REFER'),
      notify('10:00:01.006000', 'SIP/2.0 200 OK', 'a@h', '2 NOTIFY'),
    ].join('');
    expect(referTimings(timedSippMessages(trace)).map((t) => t.notifies.map((n) => Math.round(n.afterMs)))).toEqual([[4], [6]]);
  });

  it('carries the time across midnight', () => {
    const trace = refer('23:59:59.999000') + notify('00:00:00.004000', 'SIP/2.0 200 OK').replace('2026-11-21', '2026-11-22');
    expect(referLatencyMs(trace)).toBeCloseTo(5, 3);
  });

  it('ignores requests without a sipfrag body and SIPp\'s other lines', () => {
    const trace = `Problem EAGAIN on socket  6 and poll_idx  is 1\n${refer('10:00:00.000000')}${request('received', '10:00:00.001000', 'NOTIFY', 'a@h', '1 NOTIFY')}${notify('10:00:00.002000', 'SIP/2.0 200 OK')}`;
    expect(referLatencyMs(trace)).toBeCloseTo(2, 3);
  });
});
