// Which call a recall places (src/transfer/recall.ts), and the cause the
// transferees' call ends with when it fails too.
import { describe, expect, it } from 'vitest';
import { dialStringOf, hangupReasonOf, planRecall } from '../../src/transfer/recall.js';

describe('planRecall', () => {
  it('rings the transferer back on the endpoint its channel came from', () => {
    expect(planRecall({ to: 'transferer' }, true, 'PJSIP/1002-0000000a')).toEqual({ recall: { to: 'transferer', endpoint: 'PJSIP/1002' } });
    // An endpoint name may itself contain '-': the last one separates the counter.
    expect(planRecall({ to: 'transferer' }, true, 'PJSIP/desk-12-0000001f')).toEqual({ recall: { to: 'transferer', endpoint: 'PJSIP/desk-12' } });
  });

  it('dials the fallback destination whatever the transferer was', () => {
    expect(planRecall({ to: 'destination', destination: '1004' }, true, undefined)).toEqual({ recall: { to: 'destination', destination: '1004' } });
  });

  it('recalls nobody while the transferer is still in the call (it is back with the transferees), or when off', () => {
    expect(planRecall({ to: 'transferer' }, false, 'PJSIP/1002-0000000a')).toEqual({ recall: undefined, why: 'the transferer is still in the call' });
    expect(planRecall({ to: 'off' }, true, 'PJSIP/1002-0000000a')).toEqual({ recall: undefined, why: 'TRANSFER_RECALL is off' });
  });

  it('cannot ring back a transferer whose channel names no phone', () => {
    expect(planRecall({ to: 'transferer' }, true, 'Local/1002@default-00000001;2')).toEqual({
      recall: undefined,
      why: "the transferer's endpoint is not known (channel Local/1002@default-00000001;2)",
    });
    expect(planRecall({ to: 'transferer' }, true, undefined).recall).toBeUndefined();
    expect(dialStringOf('PJSIP/1002')).toBeUndefined();
  });
});

describe('hangupReasonOf', () => {
  it('ends the transferees call with the recall failure as its cause', () => {
    expect([hangupReasonOf('busy'), hangupReasonOf('no-answer'), hangupReasonOf('rejected'), hangupReasonOf('unreachable'), hangupReasonOf('congestion')]).toEqual([
      'busy',
      'no_answer',
      'rejected',
      'unallocated',
      'congestion',
    ]);
    expect(hangupReasonOf('error')).toBe('normal');
    expect(hangupReasonOf('cancelled')).toBe('normal');
  });
});
