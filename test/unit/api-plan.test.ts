// Planning a transfer asked for through the API (src/transfer/api-plan.ts),
// and the attended states only the API reaches (src/transfer/machine.ts).
import { describe, expect, it } from 'vitest';
import type { TopologySnapshot } from '../../src/transfer/attended-plan.js';
import { planApiTransfer } from '../../src/transfer/api-plan.js';
import { bridgesOf, next, TransferState, UnexpectedStimulus, type ConsultPlan, type Transfer } from '../../src/transfer/machine.js';
import type { BridgeRecord, ChannelRecord } from '../../src/registry/types.js';
import { channelRecord } from '../helpers/channels.js';

function topo(channels: ChannelRecord[], bridges: BridgeRecord[] = [{ id: 'b1', name: 'call', channelIds: channels.filter((c) => c.bridgeId === 'b1').map((c) => c.id) }]): TopologySnapshot {
  return { channels: new Map(channels.map((c) => [c.id, c])), bridges: new Map(bridges.map((b) => [b.id, b])), callIdCandidates: [], ringingLegs: new Map() };
}

const consult: ConsultPlan = { sourceId: 'bob', sourceBridgeId: 'b1', transfereeIds: ['alice'], destination: 'carol', consultBridgeId: 'consult-t1' };
const noEffects = { stopMohOn: [], unholdAfterNotify: [], afterNotify: [], afterEcho: [], destroyBridges: [] };

describe('planApiTransfer', () => {
  const call = topo([channelRecord('alice', { bridgeId: 'b1' }), channelRecord('bob', { bridgeId: 'b1' })]);

  it('blind: checking, with the transferees of the channel named and the dial overrides', () => {
    const plan = planApiTransfer({ kind: 'blind', channelId: 'bob', destination: 'carol', dial: { timeoutMs: 5000 } }, 't1', call);
    expect(plan).toEqual({
      ok: true,
      bridgeIds: ['b1'],
      from: { state: 'checking', leg: { sourceId: 'bob', sourceBridgeId: 'b1', transfereeIds: ['alice'], destination: 'carol', busyIsDecline: true, dial: { timeoutMs: 5000 } } },
    });
  });

  it('attended: consulting, in a consultation bridge named after the transfer', () => {
    expect(planApiTransfer({ kind: 'attended', channelId: 'bob', destination: 'carol' }, 't1', call)).toEqual({
      ok: true,
      bridgeIds: ['b1', 'consult-t1'],
      from: { state: 'consulting', consult },
    });
  });

  it('refuses an unknown or departing channel (404), one in no bridge or alone in it (409)', () => {
    expect(planApiTransfer({ kind: 'blind', channelId: 'x', destination: 'c' }, 't', call)).toMatchObject({ ok: false, status: 404, code: 'ERR_CHANNEL_NOT_FOUND' });
    const leaving = topo([channelRecord('alice', { bridgeId: 'b1' }), channelRecord('bob', { bridgeId: 'b1', hangingUp: true })]);
    expect(planApiTransfer({ kind: 'blind', channelId: 'bob', destination: 'c' }, 't', leaving)).toMatchObject({ ok: false, status: 404 });
    const alone = topo([channelRecord('bob', { bridgeId: undefined })]);
    expect(planApiTransfer({ kind: 'blind', channelId: 'bob', destination: 'c' }, 't', alone)).toMatchObject({ ok: false, status: 409, code: 'ERR_CHANNEL_NOT_BRIDGED' });
    const lonely = topo([channelRecord('bob', { bridgeId: 'b1' }), channelRecord('alice', { bridgeId: 'b1', hangingUp: true })]);
    expect(planApiTransfer({ kind: 'attended', channelId: 'bob', destination: 'c' }, 't', lonely)).toMatchObject({ ok: false, status: 409, code: 'ERR_NO_TRANSFEREE' });
  });
});

describe('attended transfers from the API: state table', () => {
  const consulting: Transfer = { state: TransferState.Consulting, consult };
  const consulted: Transfer = { state: TransferState.Consulted, consult };

  it('answered, then completed: the target joins, the music stops, the transferer goes, the consultation bridge is deleted', () => {
    expect(next(consulting, { type: 'leg-answered' }).transfer).toEqual(consulted);
    const completing = next(consulted, { type: 'command', command: 'complete' }).transfer;
    expect(completing).toEqual({ state: 'completing', consult });
    expect(next(completing, { type: 'moved' }).transfer).toEqual({
      state: 'finishing',
      ending: {
        ...noEffects,
        result: 'completed',
        sipfrag: 'channel_answered',
        stopMohOn: ['alice'],
        afterNotify: ['bob'],
        destroyBridges: ['consult-t1'],
        nowTalking: { transfereeIds: ['alice'], with: 'new-leg' },
      },
    });
    expect(bridgesOf(consulted)).toEqual(['b1', 'consult-t1']);
  });

  it('the transferer hanging up in consultation completes; the target hanging up brings the transferer back', () => {
    expect(next(consulted, { type: 'transferer-gone' }).transfer.state).toBe('completing');
    expect(next(consulted, { type: 'target-gone' }).transfer).toEqual({
      state: 'returning',
      consult,
      keepTarget: false,
      ending: { ...noEffects, result: 'failed', reason: 'the target hung up during the consultation', sipfrag: 'channel_unavailable', stopMohOn: ['alice'], destroyBridges: ['consult-t1'] },
    });
  });

  it('the transferees gone, a shutdown, or a failed move keep the target with the transferer: nobody loses a call', () => {
    expect(next(consulted, { type: 'transferees-gone' }).transfer).toMatchObject({ state: 'returning', keepTarget: true });
    expect(next(consulted, { type: 'shutdown' }).transfer).toMatchObject({ state: 'returning', keepTarget: true });
    expect(next({ state: TransferState.Completing, consult }, { type: 'move-failed', step: 's', error: 'e', undone: true }).transfer).toMatchObject({ state: 'returning', keepTarget: true });
  });

  it('while ringing: refused by the policy touches nothing; failed, cancelled or abandoned brings the transferer back; complete is no stimulus', () => {
    expect(next(consulting, { type: 'policy', allowed: false, rule: 'deny-list', detail: 'd' }).transfer).toMatchObject({ state: 'finishing', ending: { result: 'rejected', destroyBridges: [] } });
    for (const s of [{ type: 'leg-failed', failure: 'busy', detail: 'd' }, { type: 'command', command: 'cancel' }, { type: 'transferer-gone' }, { type: 'transferees-gone' }, { type: 'shutdown' }] as const) {
      expect(next(consulting, s).transfer).toMatchObject({ state: 'returning', keepTarget: false });
    }
    expect(() => next(consulting, { type: 'command', command: 'complete' })).toThrow(UnexpectedStimulus);
    const returning = next(consulting, { type: 'shutdown' }).transfer;
    expect(next(returning, { type: 'returned' }).transfer).toMatchObject({ state: 'finishing', ending: { result: 'failed', reason: 'the service is shutting down' } });
  });
});
