// The integration suite's reading of SIPp logs, checked on logs SIPp wrote
// against a real Asterisk (copied from the recorded traces).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSippMessages, parseTimedSippMessages, received, receivedSipfrags } from '../integration/sipp-messages.js';

const log = (name: string) => parseSippMessages(readFileSync(new URL(`../fixtures/sipp/${name}.sipp-messages.txt`, import.meta.url), 'utf8'));

describe('SIPp message logs', () => {
  it('reads the NOTIFY sipfrags the transferring phone received', () => {
    expect(receivedSipfrags(log('attended.bob-first'))).toEqual([100, 200]);
    expect(receivedSipfrags(log('blind-declined.bob'))).toEqual([100, 603]);
    expect(receivedSipfrags(log('blind-unavailable.bob'))).toEqual([100, 503]);
  });

  it('tells requests from responses and sent from received', () => {
    const messages = log('attended.bob-first');
    const first = messages[0]!;
    expect([first.direction, first.method, first.callId]).toEqual(['sent', 'INVITE', '1-22442@127.0.0.1']);
    const accepted = messages.find((m) => m.status === 202);
    expect(accepted).toMatchObject({ direction: 'received', cseqMethod: 'REFER' });
    expect(messages.find((m) => m.method === 'REFER')?.headers.get('refer-to')).toMatch(/Replaces=/);
  });

  it('sees who hung up on whom', () => {
    expect(received(log('blind-answered.carol'), 'BYE')).toHaveLength(1);
    expect(received(log('attended.bob-first'), 'BYE')).toHaveLength(0);
  });

  it('gives each message the time sipp logged it', () => {
    const text = readFileSync(new URL('../fixtures/sipp/attended.bob-first.sipp-messages.txt', import.meta.url), 'utf8');
    const timed = parseTimedSippMessages(text);
    expect(timed.map((m) => m.method ?? m.status)).toEqual(parseSippMessages(text).map((m) => m.method ?? m.status));
    expect(timed[0]!.at).toBe(Date.parse('2026-11-21T12:47:53.322Z') + 0.764);
    expect(timed.every((m, i) => i === 0 || m.at >= timed[i - 1]!.at)).toBe(true);
  });
});
