// REFER out (src/transfer/refer-out.ts and its states in machine.ts): which
// transfers send the call back to its carrier, and where each outcome leads.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { bridgesOf, next, TransferState, UnexpectedStimulus, type LegPlan, type Transfer } from '../../src/transfer/machine.js';
import { referOutTarget } from '../../src/transfer/refer-out.js';
import { encodeMark, planRecovery, SOURCE_MARK } from '../../src/transfer/recovery.js';
import { channelRecord, channelSnapshot } from '../helpers/channels.js';

const referOut = loadConfig({
  ARI_USERNAME: 'u',
  ARI_PASSWORD: 'p',
  TRANSFER_REFER_OUT_ENDPOINTS: 'carrier-.*',
  TRANSFER_REFER_OUT_DESTINATIONS: '0[1-9]\\d{8}',
  TRANSFER_REFER_OUT_TARGET: 'PJSIP/sip:{exten}@carrier.example',
}).transfer.referOut;

const carrierCall = channelRecord('carrier-a');
const phoneCall = channelRecord('1001');

describe('REFER out', () => {
  describe('referOutTarget', () => {
    it('a carrier\'s call to a destination off the platform: the redirect endpoint with the destination in it', () => {
      expect(referOutTarget(referOut, '0612345678', [carrierCall])).toBe('PJSIP/sip:0612345678@carrier.example');
    });

    it('none for a phone\'s call, a destination on the platform, several transferees, a transferee unknown, or REFER out off', () => {
      expect(referOutTarget(referOut, '0612345678', [phoneCall])).toBeUndefined();
      expect(referOutTarget(referOut, '1003', [carrierCall])).toBeUndefined();
      // Anchored: a longer number is not the pattern's.
      expect(referOutTarget(referOut, '06123456789', [carrierCall])).toBeUndefined();
      expect(referOutTarget(referOut, '0612345678', [carrierCall, phoneCall])).toBeUndefined();
      expect(referOutTarget(referOut, '0612345678', [undefined])).toBeUndefined();
      expect(referOutTarget(undefined, '0612345678', [carrierCall])).toBeUndefined();
    });
  });

  describe('states', () => {
    const leg: LegPlan = { sourceId: 'bob', sourceBridgeId: 'b1', transfereeIds: ['carrier-a'], destination: '0612345678', busyIsDecline: true };
    const checking: Transfer = { state: TransferState.Checking, leg };
    const referring: Transfer = { state: TransferState.ReferringOut, leg, target: 'PJSIP/sip:0612345678@carrier.example' };
    const noEffects = { stopMohOn: [], unholdAfterNotify: [], afterNotify: [], afterEcho: [], destroyBridges: [] };

    it('allowed with a REFER-out target: checking → referring out (nothing dialled); without one: dialing as before', () => {
      expect(next(checking, { type: 'policy', allowed: true, transfereesGone: false, referOutTo: referring.target }).transfer).toEqual(referring);
      expect(next(checking, { type: 'policy', allowed: true, transfereesGone: false }).transfer).toEqual({ state: 'dialing', leg });
    });

    it('the policy still decides first: refused is 603 with nothing referred', () => {
      expect(next(checking, { type: 'policy', allowed: false, rule: 'deny', detail: 'd' }).transfer).toMatchObject({
        state: 'finishing',
        ending: { result: 'rejected', sipfrag: 'channel_declined' },
      });
    });

    it('taken by the carrier: 200, the transferer hung up after the NOTIFY, the emptied bridge deleted; completed', () => {
      const finishing = next(referring, { type: 'referred-out' }).transfer;
      expect(finishing).toEqual({
        state: 'finishing',
        ending: { ...noEffects, result: 'completed', sipfrag: 'channel_answered', afterNotify: ['bob'], destroyBridges: ['b1'] },
      });
      expect(next(finishing, { type: 'finished', sent: 'sent' }).transfer).toEqual({ state: 'completed' });
    });

    it('kept by the carrier and back in its bridge: dialing the destination, as any blind transfer, with a note', () => {
      const t = next(referring, { type: 'refer-kept', detail: 'the carrier kept its call (REFER refused or failed)', restored: true });
      expect(t.transfer).toEqual({ state: 'dialing', leg });
      expect(t.note).toMatchObject({ step: 'refer-out', level: 'info', fields: { reason: 'the carrier kept its call (REFER refused or failed)' } });
    });

    it('kept but not back in its bridge, or the service shutting down: 503, failed, nothing dialled', () => {
      expect(next(referring, { type: 'refer-kept', detail: 'd', restored: false }).transfer).toEqual({
        state: 'finishing',
        ending: { ...noEffects, result: 'failed', reason: 'd; and it could not be put back in its bridge', sipfrag: 'channel_unavailable' },
      });
      expect(next(referring, { type: 'shutdown' }).transfer).toMatchObject({ state: 'finishing', ending: { result: 'failed', sipfrag: 'channel_unavailable' } });
    });

    it('claims the bridge while referring out; takes no other stimulus', () => {
      expect(bridgesOf(referring)).toEqual(['b1']);
      expect(() => next(referring, { type: 'leg-answered' })).toThrow(UnexpectedStimulus);
      expect(() => next(referring, { type: 'leg-answered' })).toThrow(/referring-out cannot take stimulus leg-answered/);
    });
  });

  it('after a restart: a transferer marked with a REFER out resumes referring out, already sent (never a second REFER)', () => {
    const referOutMark = { bridge: 'b1', transferees: ['carrier-a'], destination: '0612345678', target: 'PJSIP/sip:0612345678@carrier.example' };
    const bob = channelSnapshot('bob', { channelvars: { [SOURCE_MARK]: encodeMark({ id: 't1', referOut: referOutMark }) } });
    expect(planRecovery([bob, channelSnapshot('carrier-a')], [], () => false)).toEqual([
      {
        kind: 'referring-out',
        transferId: 't1',
        sourceId: 'bob',
        leg: { sourceId: 'bob', sourceBridgeId: 'b1', transfereeIds: ['carrier-a'], destination: '0612345678', busyIsDecline: true },
        target: 'PJSIP/sip:0612345678@carrier.example',
      },
    ]);
    // Handled by this process already: nothing to recover.
    expect(planRecovery([bob], [], () => true)).toEqual([]);
  });
});
