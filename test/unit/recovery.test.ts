// Reading a transfer back from Asterisk after a restart (src/transfer/recovery.ts).
import { describe, expect, it } from 'vitest';
import type { Bridge, Channel } from '../../src/ari/models.js';
import { channelSnapshot } from '../helpers/channels.js';
import { decodeLegMark, encodeMark, LEG_MARK, planRecovery, SOURCE_MARK, type LegMark } from '../../src/transfer/recovery.js';

const channel = (id: string, state: Channel['state'], vars: Record<string, string> = {}) => channelSnapshot(id, { state, channelvars: vars });
const bridge = (id: string, channels: string[]) => ({ id, channels }) as Bridge;
const mark: LegMark = { id: 't1', source: 'bob', bridge: 'b1', transferees: ['alice'], deadline: 1000, decline: true };

describe('planRecovery', () => {
  it('a leg still ringing, answered outside the bridge, or already with the transferees', () => {
    const leg = (state: Channel['state']) => channel('leg', state, { [LEG_MARK]: encodeMark(mark) });
    const bob = channel('bob', 'Up', { [SOURCE_MARK]: encodeMark({ id: 't1' }) });
    const none = () => false;
    expect(planRecovery([leg('Ringing'), bob], [bridge('b1', ['alice', 'bob'])], none).map((r) => r.kind)).toEqual(['leg-ringing']);
    expect(planRecovery([leg('Up'), bob], [bridge('b1', ['alice', 'bob'])], none).map((r) => r.kind)).toEqual(['leg-answered']);
    expect(planRecovery([leg('Up'), bob], [bridge('b1', ['alice', 'bob', 'leg'])], none).map((r) => r.kind)).toEqual(['leg-joined']);
  });

  it('a REFER whose transfer placed nothing (or whose leg is gone): pending, with the transferees to silence', () => {
    const bob = channel('bob', 'Up', { [SOURCE_MARK]: encodeMark({ id: 't2', transferees: ['alice'] }) });
    expect(planRecovery([bob], [], () => false)).toEqual([{ kind: 'refer-pending', transferId: 't2', sourceId: 'bob', transferees: ['alice'] }]);
  });

  it('semi-attended: the ringing leg named by the mark on the transferer (a leg outside Stasis cannot carry its own)', () => {
    const bob = channel('bob', 'Up', { [SOURCE_MARK]: encodeMark({ id: 't3', transferees: ['alice'], leg: { ...mark, id: 't3', replaced: 'consult', channel: 'route-1' } }) });
    const [r] = planRecovery([bob, channel('route-1', 'Ringing')], [], () => false);
    expect(r).toMatchObject({ kind: 'leg-ringing', transferId: 't3', leg: { id: 'route-1' }, mark: { replaced: 'consult', source: 'bob' } });
    // Its leg gone meanwhile: the REFER is pending, nothing to follow.
    expect(planRecovery([bob], [], () => false)).toMatchObject([{ kind: 'refer-pending', transferId: 't3' }]);
  });

  it('attended, killed during its moves: only the moves Asterisk does not show done are left', () => {
    const plan = {
      ok: true as const,
      mode: 'bridged' as const,
      sourceId: 'B',
      replacedId: 'D',
      resolvedBy: 'asterisk' as const,
      sourceBridgeId: 'bridge1',
      targetBridgeId: 'bridge2',
      transfereeIds: ['A', 'E'],
      targetIds: ['C'],
      moves: [
        { channelId: 'A', from: 'bridge1', to: 'bridge2' },
        { channelId: 'E', from: 'bridge1', to: 'bridge2' },
      ],
      stopMohOn: [],
      hangups: ['B', 'D'],
      destroyBridges: ['bridge1'],
      transfererGone: false,
    };
    const bob = channel('B', 'Up', { [SOURCE_MARK]: encodeMark({ id: 't4', plan }) });
    const [r] = planRecovery([bob], [bridge('bridge1', ['B', 'E']), bridge('bridge2', ['A', 'C', 'D'])], () => false);
    expect(r).toEqual({ kind: 'moves-interrupted', transferId: 't4', sourceId: 'B', plan: { ...plan, moves: [plan.moves[1]] } });
  });

  it('leaves alone what this process is handling, cleared marks and marks it cannot read', () => {
    const handled = (id: string) => id === 'bob';
    const leg = channel('leg', 'Ringing', { [LEG_MARK]: encodeMark(mark) });
    expect(planRecovery([leg, channel('bob', 'Up', { [SOURCE_MARK]: encodeMark({ id: 't1' }) })], [], handled)).toEqual([]);
    expect(planRecovery([channel('x', 'Up', { [SOURCE_MARK]: '' }), channel('y', 'Up', { [LEG_MARK]: '{"id":' })], [], () => false)).toEqual([]);
    expect(decodeLegMark(JSON.stringify({ ...mark, transferees: [] }))).toBeUndefined();
  });
});
