import { describe, expect, it } from 'vitest';
import { callerIdOf } from '../../src/legs/caller-id.js';
import { failureOfCause } from '../../src/legs/dialer.js';
import type { ChannelRecord } from '../../src/registry/types.js';

function chan(id: string, extra: Partial<ChannelRecord> = {}): ChannelRecord {
  return {
    id,
    name: `PJSIP/${id}-00000001`,
    state: 'Up',
    callId: `call-${id}`,
    caller: { name: id.toUpperCase(), number: id },
    bridgeId: 'b1',
    dialogTags: undefined,
    hangingUp: false,
    mohByService: false,
    ...extra,
  };
}

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
