// The transfer state table (src/transfer/machine.ts): every state, every
// stimulus it takes, and the ending (sipfrag, who goes when) it leads to.
import { describe, expect, it } from 'vitest';
import type { ChannelTransferEvent } from '../../src/ari/models.js';
import type { BridgeRecord, ChannelRecord } from '../../src/registry/types.js';
import { channelRecord, channelSnapshot } from '../helpers/channels.js';
import type { AttendedPlan, TopologySnapshot } from '../../src/transfer/attended-plan.js';
import {
  bridgesOf,
  kindOf,
  next,
  TransferState,
  UnexpectedStimulus,
  type LegPlan,
  type Stimulus,
  type Transfer,
} from '../../src/transfer/machine.js';

const chan = (id: string, bridgeId: string | undefined = 'b1') => channelRecord(id, { bridgeId });

function topo(channels: ChannelRecord[]): TopologySnapshot {
  const bridge: BridgeRecord = { id: 'b1', name: 'call', channelIds: channels.filter((c) => c.bridgeId === 'b1').map((c) => c.id) };
  return { channels: new Map(channels.map((c) => [c.id, c])), bridges: new Map([['b1', bridge]]), callIdCandidates: [], ringingLegs: new Map() };
}

function refer(destination: string, replaces?: string): ChannelTransferEvent {
  return {
    type: 'ChannelTransfer',
    timestamp: 't',
    application: 'ari-transfer',
    refer_to: { requested_destination: replaces ? { destination, protocol_id: replaces } : { destination } },
    referred_by: { source_channel: channelSnapshot('bob') },
  };
}

const blindLeg: LegPlan = { sourceId: 'bob', sourceBridgeId: 'b1', transfereeIds: ['alice'], destination: 'carol', busyIsDecline: true };
const semiLeg: LegPlan = { sourceId: 'bob', sourceBridgeId: 'b1', transfereeIds: ['alice'], replacedId: 'bob-consult', busyIsDecline: false };
const noEffects = { stopMohOn: [], unholdAfterNotify: [], afterNotify: [], afterEcho: [], destroyBridges: [] };

/** Runs stimuli from a transfer, returning every state passed through. */
function walk(from: Transfer, ...stimuli: Stimulus[]): { states: TransferState[]; last: Transfer } {
  const states = [from.state];
  let t = from;
  for (const s of stimuli) {
    t = next(t, s).transfer;
    states.push(t.state);
  }
  return { states, last: t };
}

describe('transfer state table', () => {
  describe('blind', () => {
    const requested: Transfer = { state: TransferState.Requested, event: refer('carol') };
    const opened: Stimulus = { type: 'opened', topology: topo([chan('alice'), chan('bob')]) };

    it('answered: requested → checking → dialing → joining → finishing (200, the transferer hung up after the NOTIFY) → completed', () => {
      const { states, last } = walk(requested, opened, { type: 'policy', allowed: true, transfereesGone: false }, { type: 'leg-answered' });
      expect(states).toEqual(['requested', 'checking', 'dialing', 'joining']);
      expect(last).toEqual({ state: 'joining', leg: blindLeg });
      const finishing = next(last, { type: 'joined' }).transfer;
      expect(finishing).toEqual({
        state: 'finishing',
        // The transferee's ringback stops with bob's hangup, once the 200 is out.
        ending: {
          ...noEffects,
          result: 'completed',
          sipfrag: 'channel_answered',
          unholdAfterNotify: ['alice'],
          afterNotify: ['bob'],
          // alice and the new leg are told whom they talk to.
          nowTalking: { transfereeIds: ['alice'], with: 'new-leg' },
        },
      });
      expect(next(finishing, { type: 'finished', sent: 'sent' }).transfer).toEqual({ state: 'completed' });
    });

    it('goes on when the transferer hung up right after the 202, and says so', () => {
      const t = next(requested, { type: 'opened', topology: topo([chan('alice'), { ...chan('bob'), hangingUp: true }]) });
      expect(t.transfer).toEqual({ state: 'checking', leg: blindLeg });
      expect(t.note).toMatchObject({ step: 'transferer-gone', level: 'info' });
    });

    it('no plan (nobody with the transferer): 503, rejected, with the planner reason noted', () => {
      const t = next(requested, { type: 'opened', topology: topo([chan('bob')]) });
      expect(t.transfer).toEqual({
        state: 'finishing',
        ending: { ...noEffects, result: 'rejected', reason: 'nobody left with the transferer in bridge b1', sipfrag: 'channel_unavailable' },
      });
      expect(t.note).toMatchObject({ level: 'warn', step: 'rejected', msg: 'blind transfer rejected', fields: { reason: 'no-transferee' } });
    });

    it('another transfer rearranges the same bridge: 503, rejected, nothing touched', () => {
      const t = next(requested, { type: 'contended', bridgeId: 'b1' });
      expect(t.transfer).toMatchObject({ state: 'finishing', ending: { result: 'rejected', sipfrag: 'channel_unavailable', afterEcho: [], afterNotify: [] } });
      expect(t.note).toMatchObject({ step: 'rejected', fields: { reason: 'bridge-busy', detail: 'another transfer is rearranging bridge b1' } });
    });

    it('refused by the policy: 603, rejected, nothing dialled', () => {
      const t = next({ state: TransferState.Checking, leg: blindLeg }, { type: 'policy', allowed: false, rule: 'deny-list', detail: 'carol is denied' });
      expect(t.transfer).toEqual({
        state: 'finishing',
        ending: { ...noEffects, result: 'rejected', reason: 'destination refused (deny-list): carol is denied', sipfrag: 'channel_declined' },
      });
    });

    it('the transferee hung up while the policy decided: 503, failed, nothing dialled', () => {
      const t = next({ state: TransferState.Checking, leg: blindLeg }, { type: 'policy', allowed: true, transfereesGone: true });
      expect(t.transfer).toMatchObject({ state: 'finishing', ending: { result: 'failed', sipfrag: 'channel_unavailable' } });
    });

    it.each([
      ['busy', 'channel_declined'],
      ['rejected', 'channel_declined'],
      ['no-answer', 'channel_unavailable'],
      ['unreachable', 'channel_unavailable'],
      ['congestion', 'channel_unavailable'],
    ] as const)('target %s: unwinding (nothing to cancel), then %s, failed', (failure, sipfrag) => {
      const unwinding = next({ state: TransferState.Dialing, leg: blindLeg }, { type: 'leg-failed', failure, detail: 'd' }).transfer;
      expect(unwinding).toEqual({
        state: 'unwinding',
        leg: blindLeg,
        cancel: undefined,
        ending: { ...noEffects, result: 'failed', reason: `target ${failure}: d`, sipfrag },
      });
      expect(next(unwinding, { type: 'unwound' }).transfer).toMatchObject({ state: 'finishing', ending: { sipfrag } });
    });

    it('the transferees hang up, or the service shuts down, while the target rings: the leg is cancelled, 503', () => {
      expect(next({ state: TransferState.Dialing, leg: blindLeg }, { type: 'transferees-gone' }).transfer).toMatchObject({
        state: 'unwinding',
        cancel: 'the transferee hung up while the target was ringing',
        ending: { result: 'failed', sipfrag: 'channel_unavailable', reason: 'the transferee hung up while the target was ringing' },
      });
      expect(next({ state: TransferState.Dialing, leg: blindLeg }, { type: 'shutdown' }).transfer).toMatchObject({
        state: 'unwinding',
        cancel: 'the service is shutting down',
        ending: { result: 'failed', sipfrag: 'channel_unavailable' },
      });
    });

    it('the new leg cannot join: 503, failed', () => {
      expect(next({ state: TransferState.Joining, leg: blindLeg }, { type: 'join-failed' }).transfer).toEqual({
        state: 'finishing',
        ending: { ...noEffects, result: 'failed', reason: 'the new leg could not join bridge b1', sipfrag: 'channel_unavailable' },
      });
    });
  });

  describe('recall (TRANSFER_RECALL) after a failure with the transferer gone', () => {
    const recall = { to: 'transferer', endpoint: 'PJSIP/1002' } as const;

    it('the target is busy: unwinding keeps the hold, the phone is still told 603, then recalling; answered: failed, with how', () => {
      const { states, last } = walk(
        { state: TransferState.Dialing, leg: blindLeg },
        { type: 'leg-failed', failure: 'busy', detail: 'cause 17', recall },
        { type: 'unwound' },
      );
      expect(states).toEqual(['dialing', 'unwinding', 'finishing']);
      expect(last).toEqual({
        state: 'finishing',
        ending: { ...noEffects, result: 'failed', reason: 'target busy: cause 17', sipfrag: 'channel_declined', recall: { plan: recall, leg: blindLeg } },
      });
      const recalling = next(last, { type: 'finished', sent: 'channel-gone' }).transfer;
      expect(recalling).toEqual({ state: 'recalling', leg: blindLeg, recall, reason: 'target busy: cause 17' });
      expect(bridgesOf(recalling)).toEqual(['b1']);
      expect(next(recalling, { type: 'recalled', answered: true }).transfer).toEqual({
        state: 'failed',
        reason: 'target busy: cause 17; recall to the transferer (PJSIP/1002) answered: the transferees are connected to it',
      });
    });

    it('the recall fails too: failed, saying the transferees were hung up', () => {
      const recalling: Transfer = { state: TransferState.Recalling, leg: blindLeg, recall: { to: 'destination', destination: '1004' }, reason: 'target no-answer: timeout' };
      expect(next(recalling, { type: 'recalled', answered: false, detail: 'busy: cause 17' }).transfer).toEqual({
        state: 'failed',
        reason: 'target no-answer: timeout; recall to the fallback destination 1004 failed (busy: cause 17): the transferees were hung up',
      });
    });

    it('semi-attended: the recall follows the 503, and the consultation call still goes after the echo', () => {
      const t = next({ state: TransferState.Dialing, leg: semiLeg }, { type: 'leg-failed', failure: 'no-answer', detail: 'd', recall }).transfer;
      expect(t).toMatchObject({ state: 'unwinding', ending: { sipfrag: 'channel_unavailable', afterEcho: [{ channelId: 'bob-consult' }], recall: { plan: recall } } });
    });

    it('no recall for the transferees hanging up or a shutdown, and recalling takes no other stimulus', () => {
      expect(next({ state: TransferState.Dialing, leg: blindLeg }, { type: 'transferees-gone' }).transfer).not.toHaveProperty('ending.recall');
      const recalling: Transfer = { state: TransferState.Recalling, leg: blindLeg, recall, reason: 'r' };
      expect(() => next(recalling, { type: 'unwound' })).toThrow(UnexpectedStimulus);
    });
  });

  describe('semi-attended (the consultation call still rings)', () => {
    it('any target failure is 503, and the ringing consultation call goes only once Asterisk echoed it', () => {
      const t = next({ state: TransferState.Dialing, leg: semiLeg }, { type: 'leg-failed', failure: 'busy', detail: 'd' }).transfer;
      expect(t).toMatchObject({ state: 'unwinding', ending: { sipfrag: 'channel_unavailable', afterEcho: [{ channelId: 'bob-consult' }] } });
    });

    it('answered: 200, the transferer after the NOTIFY, the consultation call after the echo', () => {
      expect(next({ state: TransferState.Joining, leg: semiLeg }, { type: 'joined' }).transfer).toEqual({
        state: 'finishing',
        ending: {
          ...noEffects,
          result: 'completed',
          sipfrag: 'channel_answered',
          unholdAfterNotify: ['alice'],
          afterNotify: ['bob'],
          afterEcho: [{ channelId: 'bob-consult' }],
          nowTalking: { transfereeIds: ['alice'], with: 'new-leg' },
        },
      });
    });

    it('the ringing leg answered or failed before it could be taken over: 503, rejected', () => {
      const t = next({ state: TransferState.Dialing, leg: semiLeg }, { type: 'leg-lost' });
      expect(t.transfer).toMatchObject({ state: 'finishing', ending: { result: 'rejected', sipfrag: 'channel_unavailable' } });
      expect(t.note).toMatchObject({ level: 'warn', step: 'rejected' });
    });
  });

  describe('attended', () => {
    const plan: AttendedPlan = {
      ok: true,
      mode: 'bridged',
      sourceId: 'B',
      replacedId: 'D',
      resolvedBy: 'asterisk',
      sourceBridgeId: 'bridge1',
      targetBridgeId: 'bridge2',
      transfereeIds: ['A'],
      targetIds: ['C'],
      moves: [{ channelId: 'A', from: 'bridge1', to: 'bridge2' }],
      stopMohOn: ['A'],
      hangups: ['B', 'D'],
      destroyBridges: ['bridge1'],
      transfererGone: false,
    };

    it('the transferer gone right after the 202: the transfer goes on, planned from the bridge the event saw it in', () => {
      // bob's leg is gone from the registry; alice is alone in b1, D talks to carol in b2.
      const event = refer('1002', 'call-D');
      event.referred_by.bridge = { id: 'b1', technology: 'simple_bridge', bridge_type: 'mixing', bridge_class: 'stasis', creator: 'Stasis', name: 'call', channels: ['alice', 'bob'], creationtime: 't', video_mode: 'talker' } as never;
      event.refer_to.destination_channel = channelSnapshot('D');
      const topology = topo([chan('alice'), chan('D', 'b2'), chan('carol', 'b2')]);
      const withTarget = new Map(topology.bridges).set('b2', { id: 'b2', name: 'call', channelIds: ['D', 'carol'] });
      const t = next({ state: TransferState.Requested, event }, { type: 'opened', topology: { ...topology, bridges: withTarget } });
      expect(t.transfer).toMatchObject({
        state: 'moving',
        plan: { sourceId: 'bob', sourceBridgeId: 'b1', transfereeIds: ['alice'], targetIds: ['carol'], moves: [{ channelId: 'alice', from: 'b1', to: 'b2' }], transfererGone: true },
      });
      expect(t.note).toMatchObject({ step: 'plan', fields: { transfererGone: true } });
    });

    it('a Replaces dialog on another node: dialing a call to that node; answered: joining, then 200 with the transferer hung up after the NOTIFY; failed: 503', () => {
      const elsewhere = { found: [{ node: 'ast2', channelId: 'bob-consult-on-ast2', bridged: true }] };
      const opened: Stimulus = { type: 'opened', topology: { ...topo([chan('alice'), chan('bob')]), elsewhere } };
      const remoteLeg: LegPlan = { sourceId: 'bob', sourceBridgeId: 'b1', transfereeIds: ['alice'], remote: { node: 'ast2', replacedId: 'bob-consult-on-ast2' }, busyIsDecline: false };
      const t = next({ state: TransferState.Requested, event: refer('1003', 'call-far') }, opened);
      expect(t.transfer).toEqual({ state: 'dialing', leg: remoteLeg });
      expect(t.note).toMatchObject({ step: 'plan', fields: { node: 'ast2', replacedChannelId: 'bob-consult-on-ast2' } });
      expect(bridgesOf(t.transfer)).toEqual(['b1']);
      const joined = walk(t.transfer, { type: 'leg-answered' }, { type: 'joined' }).last;
      // No nowTalking: the new leg is the trunk call, the party is on the other node.
      expect(joined).toEqual({
        state: 'finishing',
        ending: { ...noEffects, result: 'completed', sipfrag: 'channel_answered', unholdAfterNotify: ['alice'], afterNotify: ['bob'] },
      });
      // Busy or refused, the other node's "no" is no decline of a person: 503.
      const failed = walk(t.transfer, { type: 'leg-failed', failure: 'congestion', detail: 'cause 34' }, { type: 'unwound' }).last;
      expect(failed).toMatchObject({ state: 'finishing', ending: { result: 'failed', sipfrag: 'channel_unavailable' } });
    });

    it('a Replaces dialog nobody knows: 503, rejected', () => {
      const t = next({ state: TransferState.Requested, event: refer('1002', 'call-nobody') }, { type: 'opened', topology: topo([chan('bob')]) });
      expect(t.transfer).toMatchObject({ state: 'finishing', ending: { result: 'rejected', sipfrag: 'channel_unavailable' } });
      expect(t.note).toMatchObject({ msg: 'attended transfer rejected', fields: { reason: 'unknown-dialog' } });
    });

    it('moved: 200 with our music stopped; the replaced leg (else taken out of the target bridge), the transferer and the emptied bridge go after the echo', () => {
      const t = next({ state: TransferState.Moving, plan }, { type: 'moved' }).transfer;
      expect(t).toEqual({
        state: 'finishing',
        ending: {
          result: 'completed',
          sipfrag: 'channel_answered',
          stopMohOn: ['A'],
          unholdAfterNotify: [],
          afterNotify: [],
          afterEcho: [{ channelId: 'D', bridgeId: 'bridge2' }, { channelId: 'B' }],
          destroyBridges: ['bridge1'],
          // The transferee and the target now talk: each is told the other.
          nowTalking: { transfereeIds: ['A'], with: ['C'] },
          ifTransfererGone: 'transferer hung up before the 200 sipfrag',
        },
      });
      expect(next(t, { type: 'finished', sent: 'channel-gone' }).transfer).toEqual({ state: 'completed', reason: 'transferer hung up before the 200 sipfrag' });
      expect(next(t, { type: 'finished', sent: 'sent' }).transfer).toEqual({ state: 'completed' });
    });

    it('a move failed: 503, failed, saying whether it was undone', () => {
      const t = next({ state: TransferState.Moving, plan }, { type: 'move-failed', step: 'move A to bridge bridge2', error: 'boom', undone: false });
      expect(t.transfer).toMatchObject({ state: 'finishing', ending: { result: 'failed', sipfrag: 'channel_unavailable', reason: 'move A to bridge bridge2 failed (boom); NOT fully undone' } });
    });

    it('claims both bridges while moving, the transferees bridge while a leg rings, none once finishing', () => {
      expect(bridgesOf({ state: TransferState.Moving, plan })).toEqual(['bridge1', 'bridge2']);
      expect(bridgesOf({ state: TransferState.Dialing, leg: semiLeg })).toEqual(['b1']);
      expect(bridgesOf({ state: TransferState.Finishing, ending: { ...noEffects, result: 'failed', sipfrag: 'channel_unavailable' } })).toEqual([]);
    });
  });

  it('kindOf: a REFER with Replaces is attended, without it blind', () => {
    expect(kindOf(refer('carol'))).toBe('blind');
    expect(kindOf(refer('1002', 'call-D'))).toBe('attended');
  });

  it('refuses a stimulus its state does not take, with a coded error', () => {
    expect(() => next({ state: TransferState.Moving, plan: {} as AttendedPlan }, { type: 'leg-answered' })).toThrow(UnexpectedStimulus);
    expect(() => next({ state: TransferState.Completed }, { type: 'joined' })).toThrow(/completed cannot take stimulus joined/);
  });
});
