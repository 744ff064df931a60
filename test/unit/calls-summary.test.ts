// What the live page shows of the registry: bounded, whatever the number of calls.
import { describe, expect, it } from 'vitest';
import { summarizeCalls } from '../../src/http/calls-summary.js';
import { channelRecord } from '../helpers/channels.js';

describe('summarizeCalls', () => {
  it('lists each bridge with its channels, then the channels in no bridge, oldest first', () => {
    const channels = [
      channelRecord('3', { bridgeId: undefined, state: 'Ringing' }),
      channelRecord('2', { bridgeId: 'b1' }),
      channelRecord('1', { bridgeId: 'b1', hangingUp: true }),
    ];
    const bridges = [{ id: 'b1', name: 'call-1', channelIds: ['1', '2', 'gone'] }];
    expect(summarizeCalls(channels, bridges, 10)).toEqual({
      totals: { channels: 3, bridges: 1 },
      calls: [
        {
          bridgeId: 'b1',
          bridgeName: 'call-1',
          // A member the registry no longer has is left out, not shown empty.
          parties: [
            { id: '1', name: 'PJSIP/1-00000001', state: 'Up', caller: { name: '1', number: '1' }, hangingUp: true },
            { id: '2', name: 'PJSIP/2-00000001', state: 'Up', caller: { name: '2', number: '2' }, hangingUp: false },
          ],
        },
      ],
      alone: [{ id: '3', name: 'PJSIP/3-00000001', state: 'Ringing', caller: { name: '3', number: '3' }, hangingUp: false }],
      notShown: { calls: 0, alone: 0 },
    });
  });

  it('shows at most `limit` calls and lone channels, and counts the rest', () => {
    const channels = [];
    const bridges = [];
    for (let i = 0; i < 5000; i++) {
      const id = String(100000 + i);
      channels.push(channelRecord(`${id}.a`, { bridgeId: `b${id}` }), channelRecord(`${id}.b`, { bridgeId: `b${id}` }), channelRecord(`${id}.c`, { bridgeId: undefined }));
      bridges.push({ id: `b${id}`, name: '', channelIds: [`${id}.a`, `${id}.b`] });
    }
    const summary = summarizeCalls(channels.reverse(), bridges.reverse(), 200);
    expect(summary.totals).toEqual({ channels: 15000, bridges: 5000 });
    expect(summary.calls).toHaveLength(200);
    expect(summary.calls[0]!.bridgeId).toBe('b100000');
    expect(summary.calls[199]!.bridgeId).toBe('b100199');
    expect(summary.alone).toHaveLength(200);
    expect(summary.alone[0]!.id).toBe('100000.c');
    expect(summary.notShown).toEqual({ calls: 4800, alone: 4800 });
  });
});
