// The effects of an attended transfer started from the API (machine.ts:
// consulting, consulted, completing, returning). The transferer S leaves the
// transferees' bridge BS for a consultation bridge BC, hears the target ring
// there, talks to it once it answers, and the API (or S hanging up) decides:
// the target joins the transferees, or S comes back to them.
//
// There is no REFER, so no sipfrag: the API's caller follows the transfer
// through GET /transfers/{id}, the webhooks and the history.
import { isAriError } from '../ari/errors.js';
import type { AllEnded } from '../legs/channel-watch.js';
import { callerIdOf } from '../legs/caller-id.js';
import type { DialAttempt } from '../legs/dialer.js';
import { watchTransferees, type FlowContext } from './flow.js';
import { startHold, type HoldContext } from './hold.js';
import type { ConsultPlan, Stimulus, TransferCommand } from './machine.js';
import { carryOutMoves } from './moves.js';
import type { TransferDescription } from './policy.js';
import type { ChannelRecord } from '../registry/types.js';

/** What the consultation borrows from its transfer's run. */
export interface ConsultationHost {
  ctx: FlowContext;
  holdContext(): HoldContext;
  /** Resolves true once the leg is gone or going. */
  hangUp(channelId: string): Promise<boolean>;
  describe(consult: ConsultPlan): TransferDescription;
  party(channelId: string): ChannelRecord | undefined;
}

export class Consultation {
  /** The call to the target, once placed. */
  private leg: DialAttempt | undefined;
  private readonly watches: AllEnded[] = [];
  private transferees: AllEnded | undefined;
  private transferer: AllEnded | undefined;

  constructor(private readonly host: ConsultationHost) {}

  /** The target's channel, once its call is placed. */
  get targetId(): string | undefined {
    return this.leg?.channelId;
  }

  dispose(): void {
    for (const w of this.watches) w.dispose();
  }

  /** The policy, then S to BC hearing the target ring, the transferees to music; until the target answers or not. */
  async consult(c: ConsultPlan): Promise<Stimulus> {
    const { ctx } = this.host;
    const { deps, journal } = ctx;
    this.transferees = await this.watch(c.transfereeIds);
    this.transferer = await this.watch([c.sourceId]);
    const decision = await deps.policy.evaluate(this.host.describe(c));
    journal.info('policy', { destination: c.destination, ...decision }, decision.allowed ? 'destination allowed' : 'destination refused');
    if (!decision.allowed) return { type: 'policy', allowed: false, rule: decision.rule, detail: decision.detail };

    try {
      await deps.rest.createBridge({ bridgeId: c.consultBridgeId, type: 'mixing', name: `consultation ${ctx.transferId}` });
      await deps.rest.addChannel(c.consultBridgeId, c.sourceId);
    } catch (err) {
      journal.error('consult', { err, channelId: c.sourceId, bridgeId: c.consultBridgeId }, 'the transferer could not be moved to a consultation bridge');
      return { type: 'leg-failed', failure: 'error', detail: `consultation bridge: ${err instanceof Error ? err.message : String(err)}` };
    }
    journal.info('move', { channelId: c.sourceId, from: c.sourceBridgeId, to: c.consultBridgeId }, 'transferer moved to the consultation bridge');
    // Held, as a phone's hold would: music, whatever TRANSFER_HOLD_MODE says for blind transfers.
    await startHold(c.transfereeIds, { ...this.host.holdContext(), holdMode: 'moh' });
    await this.ring(c.sourceId, true);

    const leg = deps.dialer.dial({
      exten: c.destination,
      purpose: 'transfer',
      callerId: c.dial?.callerId ?? callerIdOf(this.host.party(c.sourceId)),
      variables: { ...deps.transfer.channelVars, ...c.dial?.variables },
      timeoutMs: c.dial?.timeoutMs ?? deps.transfer.timeoutMs,
      originator: c.sourceId,
    });
    this.leg = leg;
    journal.info('dial', { destination: c.destination, legChannelId: leg.channelId, dialString: leg.endpoint }, 'attended transfer: calling the target for the transferer');
    const outcome = await Promise.race([
      leg.outcome,
      this.transferer.ended.then(() => 'transferer' as const),
      this.transferees.ended.then(() => 'transferees' as const),
      ctx.command().then((command) => ({ command })),
      ctx.aborted.then(() => 'aborted' as const),
    ]);
    if (outcome === 'transferer') return { type: 'transferer-gone' };
    if (outcome === 'transferees') return { type: 'transferees-gone' };
    if (outcome === 'aborted') return { type: 'shutdown' };
    if ('command' in outcome) return { type: 'command', command: outcome.command };
    if (!outcome.answered) return { type: 'leg-failed', failure: outcome.failure, detail: outcome.detail };
    // Joined before the state says "consulted": from then on the two talk.
    await this.ring(c.sourceId, false);
    try {
      await deps.rest.addChannel(c.consultBridgeId, leg.channelId);
    } catch (err) {
      journal.error('join', { err, channelId: leg.channelId, bridgeId: c.consultBridgeId }, 'the target could not join the transferer');
      return { type: 'leg-failed', failure: 'error', detail: 'the target answered but could not join the transferer' };
    }
    journal.info('join', { channelId: leg.channelId, bridgeId: c.consultBridgeId }, 'the target talks to the transferer');
    return { type: 'leg-answered' };
  }

  /** S and the target talk in BC, until the API, or a hang-up, decides. */
  async talk(): Promise<Stimulus> {
    const { ctx } = this.host;
    const target = await this.watch([this.leg!.channelId]);
    const next = await Promise.race([
      ctx.command().then((command): Stimulus => ({ type: 'command', command })),
      this.transferer!.ended.then((): Stimulus => ({ type: 'transferer-gone' })),
      target.ended.then((): Stimulus => ({ type: 'target-gone' })),
      this.transferees!.ended.then((): Stimulus => ({ type: 'transferees-gone' })),
      ctx.aborted.then((): Stimulus => ({ type: 'shutdown' })),
    ]);
    return next;
  }

  /** The target to the transferees' bridge (the transferer goes when the transfer finishes). */
  async complete(c: ConsultPlan): Promise<Stimulus> {
    const { ctx } = this.host;
    const moved = await carryOutMoves([{ channelId: this.leg!.channelId, from: c.consultBridgeId, to: c.sourceBridgeId }], { rest: ctx.deps.rest, journal: ctx.journal });
    if (moved.ok) return { type: 'moved' };
    const error = moved.error instanceof Error ? moved.error.message : String(moved.error);
    return { type: 'move-failed', step: moved.failedStep, error, undone: moved.undone };
  }

  /** The target's call cancelled or hung up (unless kept); the transferer, and a kept target, back to the transferees. */
  async giveUp(c: ConsultPlan, keepTarget: boolean, why: string): Promise<Stimulus> {
    const { ctx } = this.host;
    const leg = this.leg;
    let back = [c.sourceId];
    if (leg) {
      await leg.cancel(why);
      const answered = (await leg.outcome).answered;
      if (answered && keepTarget) back = [c.sourceId, leg.channelId];
      else if (answered) await this.host.hangUp(leg.channelId);
    }
    await this.ring(c.sourceId, false);
    for (const id of back) {
      const record = await ctx.deps.registry.store.getChannel(id);
      if (!record || record.hangingUp) continue;
      try {
        await ctx.deps.rest.addChannel(c.sourceBridgeId, id);
        ctx.journal.info('move', { channelId: id, from: c.consultBridgeId, to: c.sourceBridgeId }, id === c.sourceId ? 'transferer back with the transferees' : 'target kept: joined the transferees');
      } catch (err) {
        if (!isAriError(err, 404)) ctx.journal.error('move', { err, channelId: id, to: c.sourceBridgeId }, 'could not move back to the transferees');
      }
    }
    return { type: 'returned' };
  }

  private async watch(ids: string[]): Promise<AllEnded> {
    const w = await watchTransferees(this.host.ctx, ids);
    this.watches.push(w);
    return w;
  }

  // The transferer hears the target ring in its consultation bridge.
  private async ring(channelId: string, on: boolean): Promise<void> {
    const { deps, journal } = this.host.ctx;
    try {
      await (on ? deps.sound.startRinging(channelId) : deps.sound.stopRinging(channelId));
    } catch (err) {
      if (!isAriError(err, 404)) journal.warn('hold', { err, channelId }, on ? 'could not play ringback to the transferer' : 'could not stop the ringback');
    }
  }
}
