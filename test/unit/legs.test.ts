import { describe, expect, it } from 'vitest';
import { channelRecord } from '../helpers/channels.js';
import { callerIdOf } from '../../src/legs/caller-id.js';
import { checkDestination, type DestinationCheck } from '../../src/destination-syntax.js';
import { failureOfCause } from '../../src/legs/dialer.js';

const chan = channelRecord;

describe('callerIdOf', () => {
  it('formats a caller id as ARI expects it', () => {
    expect(callerIdOf(chan('alice'))).toBe('"ALICE" <alice>');
    expect(callerIdOf(chan('x', { caller: { name: 'Say "hi"', number: '100' } }))).toBe('"Say hi" <100>');
    expect(callerIdOf(chan('x', { caller: { name: '', number: '100' } }))).toBe('<100>');
    expect(callerIdOf(chan('x', { caller: { name: '', number: '' } }))).toBeUndefined();
  });
});

describe('failureOfCause', () => {
  it('maps Q.850 causes to what the phone is told', () => {
    expect([17, 21, 19, 18, 1, 3, 34, 16, undefined].map(failureOfCause)).toEqual([
      'busy', 'rejected', 'no-answer', 'no-answer', 'unreachable', 'unreachable', 'congestion', 'error', 'error',
    ]);
  });
});

function rule(d: DestinationCheck): string | undefined {
  return d.allowed ? undefined : d.rule;
}

function detail(d: DestinationCheck): string {
  return d.allowed ? '' : d.detail;
}

describe('checkDestination', () => {
  it.each(['1003', 'carol', '+4930123', '*72', '#1', 'a_b.c-d', '1'.repeat(32)])('accepts %j', (d) => {
    expect(checkDestination(d)).toEqual({ allowed: true });
  });

  it.each([
    ['', /empty/],
    ['1'.repeat(33), /33 characters long \(at most 32\)/],
    ['1003&PJSIP/evil', /forbidden character '&'/],
    ['PJSIP/x', /forbidden character '\/'/],
    ['1003@trunk', /forbidden character '@'/],
    ['10 03', /forbidden character U\+0020/],
    ['1003,1', /forbidden character ','/],
    ['1003\n', /forbidden character U\+000A/],
    ['1003(x)', /forbidden character '\('/],
    ['1003;x', /forbidden character ';'/],
  ])('rejects %j', (d, why) => {
    const decision = checkDestination(d);
    expect(rule(decision)).toBe('invalid');
    expect(detail(decision)).toMatch(why);
  });

  it('shows at most 40 characters of a hostile value', () => {
    const junk = `1003&${'X'.repeat(100)}`;
    const text = detail(checkDestination(junk));
    expect(text).toContain('1003&' + 'X'.repeat(35));
    expect(text).not.toContain('X'.repeat(36));
    expect(text.length).toBeLessThan(130);
    // Control characters are escaped, never copied raw into the detail.
    expect(detail(checkDestination('1003\r\nVia: evil'))).not.toMatch(/[\r\n]/);
  });
});
