// Runs one transfer through its states (machine.ts): on entering a state it
// carries out that state's effects against ARI and turns how they went into
// the next stimulus. Everything a state needs is in the transfer's data; the
// only things kept here are what cannot be data: the registry snapshot the
// plan was made from, the ringing leg's handle, the watch on the transferees.
import { isAriError } from '../ari/errors.js';
import type { ChannelTransferEvent } from '../ari/models.js';
import { withRetries } from '../ari/retry.js';
import type { AllEnded } from '../legs/channel-watch.js';
import { callerIdOf } from '../legs/caller-id.js';
import type { DialAttempt } from '../legs/dialer.js';
import { hangUpLeg } from '../legs/hang-up.js';
import { internodeExten } from '../legs/internode.js';
import type { ChannelRecord } from '../registry/types.js';
import type { AttendedPlan, TopologySnapshot } from './attended-plan.js';
import { watchTransferees, type FlowContext, type FlowOutcome } from './flow.js';
import { startHold, stopHold, stopMusic, type HoldContext } from './hold.js';
import { bridgesOf, isTerminal, next, TransferState, type Ending, type LegPlan, type Stimulus, type TerminalTransfer, type Transfer } from './machine.js';
import { ChannelMarks } from './marks.js';
import { Consultation } from './consultation.js';
import { carryOutMoves } from './moves.js';
import { encodeMark, LEG_MARK, legMarkOf, SOURCE_MARK } from './recovery.js';
import { endpointOf, type PartyDescription, type TransferDescription } from './policy.js';
import type { RecallSetting } from '../config.js';
import { describeRecall, hangupReasonOf, planRecall, type RecallPlan } from './recall.js';
import { ConnectedLineTelling } from './tell-connected-line.js';
import { gatherTopology } from './topology.js';
import { referOut, referOutTarget } from './refer-out.js';

/** How long a call to another node may take to be answered by that node's instance. */
const INTERNODE_TIMEOUT_MS = 8000;

/** How long the phone's legs wait for Asterisk to finish the final NOTIFY before they are hung up anyway. */
const FINAL_NOTIFY_WAIT_MS = 2000;

/** Runs a transfer from `from` (a new REFER: requested; a recovered one: where it was, with its leg). */
export async function runTransfer(ctx: FlowContext, from: Transfer, leg?: DialAttempt, topology?: TopologySnapshot): Promise<FlowOutcome> {
  const run = new TransferRun(ctx, leg, topology);
  try {
    return await run.toTheEnd(from);
  } finally {
    run.dispose();
  }
}

class TransferRun {
  private topology: TopologySnapshot | undefined;
  /** The policy webhook's recall for this transfer, instead of TRANSFER_RECALL. */
  private recallSetting: RecallSetting | undefined;
  /** The transferer's channel name, from its REFER: who a recall rings back. */
  private transfererName: string | undefined;
  private transfereesGone: AllEnded | undefined;
  private readonly marks: ChannelMarks;
  /** Attended transfers from the API. */
  private readonly consultation: Consultation;

  constructor(
    private readonly ctx: FlowContext,
    /** The new leg: placed or taken over in dialing, or followed again after a restart. */
    private leg: DialAttempt | undefined,
    /** From the API: the registry read the request was planned from. */
    topology?: TopologySnapshot,
  ) {
    this.topology = topology;
    this.consultation = new Consultation({
      ctx,
      holdContext: () => this.holdContext(),
      hangUp: (id) => this.hangUp(id),
      describe: (c) => this.describe(c, 'attended'),
      party: (id) => this.topology?.channels.get(id),
    });
    this.marks = new ChannelMarks(ctx.deps.rest, ctx.log);
  }

  async toTheEnd(from: Transfer): Promise<FlowOutcome> {
    let t = from;
    while (!isTerminal(t)) {
      const stimulus = await this.enter(t);
      let { transfer, note } = next(t, stimulus);
      // Two transfers never rearrange one bridge at once: the later one is refused before it touches anything.
      const taken = this.ctx.ownBridges(bridgesOf(transfer));
      if (taken !== undefined) ({ transfer, note } = next(t, { type: 'contended', bridgeId: taken }));
      if (note) this.ctx.journal[note.level](note.step, note.fields ?? {}, note.msg);
      this.ctx.stateChanged(transfer.state);
      this.ctx.log.debug({ from: t.state, to: transfer.state, stimulus: stimulus.type }, 'transfer state changed');
      t = transfer;
    }
    this.clearMarks(t);
    return { result: t.state, ...(t.reason !== undefined ? { reason: t.reason } : {}) };
  }

  // The transfer is over: its marks must not make a later restart resume it.
  // Completed: the transferer is gone, the new leg stays. Otherwise the reverse.
  private clearMarks(t: TerminalTransfer): void {
    if (t.state === TransferState.Completed) {
      if (this.leg) this.marks.write(this.leg.channelId, LEG_MARK, '');
    } else {
      this.marks.write(this.ctx.sourceId, SOURCE_MARK, '');
    }
  }

  dispose(): void {
    this.transfereesGone?.dispose();
    this.consultation.dispose();
  }



  private enter(t: Exclude<Transfer, TerminalTransfer>): Promise<Stimulus> {
    switch (t.state) {
      case TransferState.Requested:
        return this.open(t.event);
      case TransferState.Checking:
        return this.check(t.leg);
      case TransferState.Dialing:
        return this.dial(t.leg);
      case TransferState.ReferringOut:
        return this.referOut(t.leg, t.target, t.sent === true);
      case TransferState.Joining:
        return this.join(t.leg);
      case TransferState.Unwinding:
        return this.unwind(t.leg, t.cancel, t.ending.recall !== undefined);
      case TransferState.Moving:
        return this.move(t.plan);
      case TransferState.Finishing:
        return this.finish(t.ending);
      case TransferState.Recalling:
        return this.recall(t.leg, t.recall);
      case TransferState.Consulting:
        return this.consultation.consult(t.consult);
      case TransferState.Consulted:
        return this.consultation.talk();
      case TransferState.Completing:
        return this.consultation.complete(t.consult);
      case TransferState.Returning:
        return this.consultation.giveUp(t.consult, t.keepTarget, t.ending.reason ?? 'the consultation ended');
      default: {
        const unknown: never = t;
        throw new Error(`no effects for state ${JSON.stringify(unknown)}`);
      }
    }
  }

  /**
   * 100 Trying at once (the phone hears nothing until we speak), not waited
   * for: nothing depends on its answer (a transferer already gone does not
   * stop the transfer), and the final state is sent after it (ctx.progress
   * keeps a transfer's states in order).
   */
  private async open(event: ChannelTransferEvent): Promise<Stimulus> {
    const { ctx } = this;
    this.transfererName = event.referred_by.source_channel.name;
    void ctx.progress('channel_progress');
    // Marked at once (after the 100 is on its way: Asterisk runs a channel's
    // requests one at a time): if the service dies from here on, the phone
    // still gets its final NOTIFY after a restart.
    this.marks.write(ctx.sourceId, SOURCE_MARK, encodeMark({ id: ctx.transferId }));
    this.topology = await gatherTopology(event, ctx.deps.registry, ctx.deps.pendingDials);
    return { type: 'opened', topology: this.topology };
  }

  // Watched from now on: the policy (a webhook) may take a while, and a
  // transferee gone meanwhile must not be sent a new call.
  private async watch(leg: LegPlan): Promise<AllEnded> {
    this.transfereesGone ??= await watchTransferees(this.ctx, leg.transfereeIds);
    return this.transfereesGone;
  }

  private async check(leg: LegPlan): Promise<Stimulus> {
    const { deps, journal } = this.ctx;
    const gone = await this.watch(leg);
    const decision = await deps.policy.evaluate(this.describe(leg));
    journal.info('policy', { destination: leg.destination, ...decision }, decision.allowed ? 'destination allowed' : 'destination refused');
    if (!decision.allowed) return { type: 'policy', allowed: false, rule: decision.rule, detail: decision.detail };
    this.recallSetting = decision.recall;
    const referOutTo = deps.referOut
      ? referOutTarget(deps.transfer.referOut, leg.destination, leg.transfereeIds.map((id) => this.topology?.channels.get(id)))
      : undefined;
    return { type: 'policy', allowed: true, transfereesGone: gone.isEnded, ...(referOutTo !== undefined ? { referOutTo } : {}) };
  }

  /** A carrier's call sent back to the carrier (refer-out.ts). */
  private async referOut(leg: LegPlan, target: string, sent: boolean): Promise<Stimulus> {
    const { ctx } = this;
    if (!sent) {
      // Before the call leaves its bridge: a restart then awaits the carrier's answer and puts the call back if kept.
      const referOutMark = { bridge: leg.sourceBridgeId, transferees: leg.transfereeIds, destination: leg.destination!, target };
      this.marks.write(ctx.sourceId, SOURCE_MARK, encodeMark({ id: ctx.transferId, referOut: referOutMark }));
    }
    const outcome = await referOut(
      {
        channelId: leg.transfereeIds[0]!,
        bridgeId: leg.sourceBridgeId,
        target,
        gone: await this.watch(leg),
        timeoutMs: ctx.deps.transfer.timeoutMs,
        aborted: ctx.aborted,
        alreadySent: sent,
      },
      ctx.deps.referOut!,
      ctx.journal,
    );
    if (outcome.taken) return { type: 'referred-out' };
    if (outcome.aborted) return { type: 'shutdown' };
    return { type: 'refer-kept', detail: outcome.detail, restored: outcome.restored };
  }

  private async dial(plan: LegPlan): Promise<Stimulus> {
    const { ctx } = this;
    // Recovered after a restart: the leg rings already, and the transferees hear it.
    const resumed = this.leg !== undefined;
    if (!resumed && plan.remote) {
      const refused = await this.offerJoin(plan.remote);
      if (refused) return refused;
    }
    const leg = this.leg ?? (plan.replacedId !== undefined ? this.takeOver(plan, plan.replacedId) : this.place(plan));
    if (!leg) return { type: 'leg-lost' };
    this.leg = leg;
    const gone = await this.watch(plan);
    if (!resumed) {
      // A taken-over leg is not in Stasis yet, where Asterisk would let us mark it: the transferer carries its mark.
      const legMark = plan.replacedId !== undefined ? { ...legMarkOf(ctx.transferId, plan, Date.now() + ctx.deps.transfer.timeoutMs), channel: leg.channelId } : undefined;
      this.marks.write(ctx.sourceId, SOURCE_MARK, encodeMark({ id: ctx.transferId, transferees: plan.transfereeIds, ...(legMark ? { leg: legMark } : {}) }));
      await startHold(plan.transfereeIds, this.holdContext());
      if (plan.destination !== undefined && this.wantsImmediate200(plan)) {
        void leg.originated.then((placed) => (placed ? ctx.progress('channel_answered') : undefined));
      }
    }
    const outcome = await Promise.race([leg.outcome, gone.ended.then(() => 'gone' as const), ctx.aborted.then(() => 'aborted' as const)]);
    // Checked again: the leg may have answered in the same instant the
    // transferee hung up, and nobody must be connected to an empty call.
    if (outcome === 'aborted') return { type: 'shutdown' };
    if (outcome === 'gone' || gone.isEnded) return { type: 'transferees-gone' };
    if (outcome.answered) return { type: 'leg-answered' };
    const recall = await this.recallFor(plan);
    return { type: 'leg-failed', failure: outcome.failure, detail: outcome.detail, ...(recall ? { recall } : {}) };
  }

  /** The recall to place if the leg failed with the transferer gone (TRANSFER_RECALL). */
  private async recallFor(plan: LegPlan): Promise<RecallPlan | undefined> {
    const { deps, journal } = this.ctx;
    const setting = this.recallSetting ?? deps.transfer.recall;
    if (setting.to === 'off') return undefined;
    const transferer = await deps.registry.store.getChannel(plan.sourceId);
    const decision = planRecall(setting, !transferer || transferer.hangingUp, this.transfererName ?? transferer?.name);
    if (decision.recall === undefined) journal.info('recall', { why: decision.why }, 'no recall');
    return decision.recall;
  }

  /** Across nodes: the other node's instance is told what the call about to arrive is for, before it is placed. */
  private async offerJoin(remote: NonNullable<LegPlan['remote']>): Promise<Stimulus | undefined> {
    const { ctx } = this;
    const otherNodes = ctx.deps.registry.otherNodes;
    try {
      if (!otherNodes) throw new Error('no shared registry (REGISTRY=memory)');
      await otherNodes.offerJoin(remote.node, { transferId: ctx.transferId, fromNode: otherNodes.node, replacedId: remote.replacedId });
      return undefined;
    } catch (err) {
      const detail = `could not ask node ${remote.node} to join: ${err instanceof Error ? err.message : String(err)}`;
      ctx.journal.error('dial', { node: remote.node }, detail);
      return { type: 'leg-failed', failure: 'error', detail };
    }
  }

  /** Semi-attended: the consultation call's ringing leg now rings for the transferees. */
  private takeOver(plan: LegPlan, replacedId: string): DialAttempt | undefined {
    const leg = this.ctx.deps.pendingDials.takeOver(replacedId);
    if (leg) {
      this.ctx.journal.info(
        'plan',
        { replacedChannelId: replacedId, transferees: plan.transfereeIds, legChannelId: leg.channelId },
        'semi-attended transfer planned: the ringing leg goes to the transferee',
      );
    }
    return leg;
  }

  private place(plan: LegPlan): DialAttempt {
    const { deps, journal } = this.ctx;
    const channels = this.topology?.channels;
    const callerFrom = { transferee: channels?.get(plan.transfereeIds[0]!), transferer: channels?.get(plan.sourceId), none: undefined };
    // The leg carries its own mark from its creation on.
    const mark = encodeMark(legMarkOf(this.ctx.transferId, plan, Date.now() + (plan.dial?.timeoutMs ?? deps.transfer.timeoutMs)));
    // Across nodes: the other node's dialplan hands the call to its Stasis application ([from-internode]), and its exten names the transfer.
    const remote = this.internodeCall(plan);
    const leg = deps.dialer.dial({
      exten: remote?.exten ?? plan.destination!,
      ...(remote ? { endpoint: remote.endpoint } : {}),
      purpose: 'transfer',
      callerId: plan.dial?.callerId ?? callerIdOf(callerFrom[deps.transfer.callerId]),
      variables: { ...deps.transfer.channelVars, ...plan.dial?.variables, [LEG_MARK]: mark },
      // Across nodes to join a call, the exten names the transfer, not a party.
      ...(plan.remote ? {} : { partyNumber: plan.destination! }),
      // The other node's instance answers within milliseconds; a node that does not is down (SIP would retry for 32 s).
      timeoutMs: plan.remote ? Math.min(deps.transfer.timeoutMs, INTERNODE_TIMEOUT_MS) : (plan.dial?.timeoutMs ?? deps.transfer.timeoutMs),
      originator: plan.transfereeIds[0],
    });
    journal.info(
      'dial',
      {
        destination: plan.destination,
        legChannelId: leg.channelId,
        dialString: leg.endpoint,
        transferees: plan.transfereeIds,
        immediate200: this.wantsImmediate200(plan),
      },
      remote
        ? plan.remote
          ? `calling node ${remote.node} to join the transferees to the replaced call's bridge there`
          : `blind transfer: dialling the destination on node ${remote.node}`
        : 'blind transfer: dialling the destination',
    );
    return leg;
  }

  /**
   * A call to another node: the attended join across nodes (its exten names
   * the transfer), or a blind destination TRANSFER_NODE_ROUTES places there
   * (its exten is the destination: that node routes it to the phone).
   */
  private internodeCall(plan: LegPlan): { node: string; exten: string; endpoint: string } | undefined {
    const { transfer } = this.ctx.deps;
    const node = plan.remote?.node ?? transfer.nodeRoutes.find((r) => r.patterns.some((re) => re.test(plan.destination ?? '')))?.node;
    if (node === undefined) return undefined;
    const exten = plan.remote ? internodeExten(this.ctx.transferId) : plan.destination!;
    return { node, exten, endpoint: transfer.internodeDialTemplate.replaceAll('{node}', node).replaceAll('{exten}', exten) };
  }

  /** Phones that insist on 200 as soon as the leg is placed (TRANSFER_IMMEDIATE_200_ENDPOINTS). */
  private wantsImmediate200(plan: LegPlan): boolean {
    const source = this.topology?.channels.get(plan.sourceId);
    const endpoint = source ? endpointOf(source.name) : undefined;
    return endpoint !== undefined && this.ctx.deps.transfer.immediate200Endpoints.some((re) => re.test(endpoint));
  }

  // The new leg joins the transferees, and the 200 follows at once: their
  // ringback stops, and the transferer (still in the bridge) is hung up,
  // only once the 200 is out. Either request in between would cost the 200
  // a round trip, or slow Asterisk down beside it (BENCHMARKS.md), for a few
  // ms less of a three-way call. A failed join has nothing to put back.
  private async join(plan: LegPlan): Promise<Stimulus> {
    const { deps: { rest }, journal } = this.ctx;
    const legId = this.leg!.channelId;
    try {
      await rest.addChannel(plan.sourceBridgeId, legId, { inhibitConnectedLineUpdates: true });
    } catch (err) {
      journal.error('join', { err, channelId: legId, bridgeId: plan.sourceBridgeId }, 'new leg could not join; dropping it');
      this.confirmJoin(plan, false);
      await Promise.all([this.hangUp(legId), stopHold(plan.transfereeIds, this.holdContext())]);
      return { type: 'join-failed' };
    }
    journal.info('join', { channelId: legId, bridgeId: plan.sourceBridgeId }, 'new leg joined the transferee');
    this.confirmJoin(plan, true);
    return { type: 'joined' };
  }

  /**
   * Across nodes: the other node's instance waits for this word before it
   * hangs the replaced leg up (so a failed join here leaves its call as it
   * was). Not waited for: the 200 must not wait on Redis, and without the
   * word that instance decides from whether our call is still up.
   */
  private confirmJoin(plan: LegPlan, joined: boolean): void {
    const otherNodes = this.ctx.deps.registry.otherNodes;
    if (!plan.remote || !otherNodes) return;
    otherNodes
      .confirmJoin(plan.remote.node, this.ctx.transferId, joined)
      .catch((err: unknown) => this.ctx.journal.warn('join', { err: String(err), node: plan.remote!.node }, 'could not tell the other node how the join went'));
  }

  /** `recalling`: the transferees keep their ringback or music for the recall. */
  private async unwind(plan: LegPlan, cancel: string | undefined, recalling: boolean): Promise<Stimulus> {
    const leg = this.leg!;
    if (cancel !== undefined) {
      // The leg first: it may answer at any moment while we tidy up.
      await leg.cancel(cancel);
      if ((await leg.outcome).answered) await this.hangUp(leg.channelId);
    }
    if (!recalling) await stopHold(plan.transfereeIds, this.holdContext());
    return { type: 'unwound' };
  }

  /**
   * Rings the transferer back, or the fallback, for the transferees (who
   * still hear ringback or music). Answered: it joins them. Not: their call
   * ends, with the recall's failure as the cause.
   */
  private async recall(plan: LegPlan, recall: RecallPlan): Promise<Stimulus> {
    const { ctx } = this;
    const { deps, journal } = ctx;
    const leg = deps.dialer.dial({
      exten: recall.to === 'destination' ? recall.destination : '',
      ...(recall.to === 'transferer' ? { endpoint: recall.endpoint } : {}),
      purpose: 'transfer',
      // The transferer's phone shows who comes back to it.
      callerId: callerIdOf(this.topology?.channels.get(plan.transfereeIds[0]!) ?? (await deps.registry.store.getChannel(plan.transfereeIds[0]!))),
      variables: deps.transfer.channelVars,
      timeoutMs: deps.transfer.recallTimeoutMs,
      originator: plan.transfereeIds[0],
    });
    journal.info('recall', { to: recall.to, legChannelId: leg.channelId, dialString: leg.endpoint, transferees: plan.transfereeIds }, `recalling ${describeRecall(recall)}`);
    const gone = await this.watch(plan);
    const outcome = await Promise.race([leg.outcome, gone.ended.then(() => 'gone' as const), ctx.aborted.then(() => 'aborted' as const)]);
    if (outcome === 'gone' || outcome === 'aborted' || gone.isEnded) {
      const why = outcome === 'aborted' ? 'the service is shutting down' : 'the transferees hung up during the recall';
      await leg.cancel(why);
      if ((await leg.outcome).answered) await this.hangUp(leg.channelId);
      await stopHold(plan.transfereeIds, this.holdContext());
      return { type: 'recalled', answered: false, detail: why };
    }
    if (outcome.answered) {
      try {
        await deps.rest.addChannel(plan.sourceBridgeId, leg.channelId);
        journal.info('join', { channelId: leg.channelId, bridgeId: plan.sourceBridgeId }, 'recall answered: joined the transferees');
        await stopHold(plan.transfereeIds, this.holdContext());
        return { type: 'recalled', answered: true };
      } catch (err) {
        journal.error('join', { err, channelId: leg.channelId, bridgeId: plan.sourceBridgeId }, 'recall answered but could not join; dropping it');
        await this.hangUp(leg.channelId);
        return this.endRecalled(plan, 'normal', 'the recall could not join the transferees');
      }
    }
    return this.endRecalled(plan, hangupReasonOf(outcome.failure), `${outcome.failure}: ${outcome.detail}`);
  }

  /** The recall failed too: the transferees' call ends, with its cause. */
  private async endRecalled(plan: LegPlan, reason: string, detail: string): Promise<Stimulus> {
    await stopHold(plan.transfereeIds, this.holdContext());
    await Promise.all(plan.transfereeIds.map((id) => this.hangUp(id, reason)));
    return { type: 'recalled', answered: false, detail };
  }

  private async move(plan: AttendedPlan): Promise<Stimulus> {
    // The plan goes to Asterisk while the moves run: a restart completes them.
    this.marks.write(this.ctx.sourceId, SOURCE_MARK, encodeMark({ id: this.ctx.transferId, plan }));
    const moved = await carryOutMoves(plan.moves, { rest: this.ctx.deps.rest, journal: this.ctx.journal });
    if (moved.ok) return { type: 'moved' };
    const error = moved.error instanceof Error ? moved.error.message : String(moved.error);
    return { type: 'move-failed', step: moved.failedStep, error, undone: moved.undone };
  }

  /**
   * The final state (and our music stopped), then the phone's legs: some
   * once the NOTIFY is queued, the others once Asterisk has echoed it.
   * Asterisk 22.10 reads the replaced leg's channel while it sends that
   * NOTIFY (res_pjsip_refer's ari_notify builds the echo from it without
   * holding a reference): hanging the leg up meanwhile is a use-after-free,
   * seen on the real Asterisk under load as an abort on a corrupted heap.
   */
  private async finish(ending: Ending): Promise<Stimulus> {
    const { ctx } = this;
    const laterGroup = ending.afterEcho.length > 0 || ending.destroyBridges.length > 0;
    const echoed = laterGroup ? ctx.echoOf(ending.sipfrag, FINAL_NOTIFY_WAIT_MS) : Promise.resolve(true);
    const holdCtx = this.holdContext();
    const [sent] = await Promise.all([ctx.progress(ending.sipfrag), ...ending.stopMohOn.map((id) => stopMusic(id, holdCtx))]);
    // The phone's legs leave only once connected line is prepared (tell-connected-line.ts).
    const telling = ending.nowTalking && ctx.deps.transfer.connectedLine ? this.prepareConnectedLines(ending.nowTalking) : Promise.resolve(undefined);
    await Promise.all([
      stopHold(ending.unholdAfterNotify, holdCtx),
      telling.then(() => Promise.all(ending.afterNotify.map((id) => this.hangUp(id)))),
      (async () => {
        if (!laterGroup) return;
        if (sent === 'sent' && !(await echoed)) {
          ctx.journal.warn('hangup', { channelIds: ending.afterEcho.map((l) => l.channelId) }, 'Asterisk did not echo the final state in time; hanging up anyway');
        }
        await telling;
        await Promise.all([...ending.afterEcho.map((l) => this.dropLeg(l)), ...ending.destroyBridges.map((id) => this.destroyBridge(id))]);
      })(),
    ]);
    await (await telling)?.afterLeaving([...ending.afterNotify, ...ending.afterEcho.map((l) => l.channelId)]);
    return { type: 'finished', sent };
  }

  /** Connected line (TRANSFER_CONNECTED_LINE): prepared before the phone's legs leave, told after (tell-connected-line.ts). */
  private prepareConnectedLines({ transfereeIds, with: others }: NonNullable<Ending['nowTalking']>): Promise<ConnectedLineTelling | undefined> {
    const { deps, journal } = this.ctx;
    const newLeg = this.leg?.channelId ?? this.consultation.targetId;
    const otherIds = others === 'new-leg' ? (newLeg !== undefined ? [newLeg] : []) : others;
    return ConnectedLineTelling.prepare({ rest: deps.rest, store: deps.registry.store, journal }, [transfereeIds, otherIds], this.ctx.sourceId);
  }

  // The phone's leg must leave the call even if Asterisk will not hang it
  // up: otherwise the phone stays in a three-way call with both parties.
  private async dropLeg({ channelId, bridgeId }: Ending['afterEcho'][number]): Promise<void> {
    if ((await this.hangUp(channelId)) || bridgeId === undefined) return;
    const { deps, journal } = this.ctx;
    try {
      await deps.rest.removeChannel(bridgeId, channelId);
      journal.warn('remove', { channelId, bridgeId }, 'replaced leg taken out of the call instead');
    } catch (err) {
      journal.error('remove', { err, channelId }, 'replaced leg could not be taken out of the call either');
    }
  }

  // Retried like a hangup: nobody else deletes a bridge the transfer emptied
  // (with ROUTING=none it is not the router's), so a lost DELETE leaks it.
  private async destroyBridge(bridgeId: string): Promise<void> {
    const { deps, journal } = this.ctx;
    try {
      await withRetries(() => deps.rest.destroyBridge(bridgeId));
      journal.info('destroy-bridge', { bridgeId }, 'emptied bridge deleted');
    } catch (err) {
      if (isAriError(err, 404)) journal.info('destroy-bridge', { bridgeId }, 'bridge already gone');
      else journal.error('destroy-bridge', { err, bridgeId }, 'could not delete the emptied bridge');
    }
  }

  private holdContext(): HoldContext {
    const { deps, journal } = this.ctx;
    return { rest: deps.sound, registry: deps.registry, journal, holdMode: deps.transfer.holdMode, mohClass: deps.mohClass };
  }

  /** Resolves true once the leg is gone or going. */
  private async hangUp(channelId: string, reason?: string): Promise<boolean> {
    const r = await hangUpLeg(channelId, this.ctx.deps, reason);
    if (r.gone) this.ctx.journal.info('hangup', { channelId, ...(reason ? { reason } : {}) }, r.how === 'hung up' ? 'leg hung up' : `leg ${r.how}`);
    else this.ctx.journal.error('hangup', { err: r.err, channelId }, 'could not hang up the leg');
    return r.gone;
  }

  private describe(plan: Pick<LegPlan, 'sourceId' | 'transfereeIds' | 'sourceBridgeId' | 'destination'>, kind: TransferDescription['kind'] = 'blind'): TransferDescription {
    const channels = this.topology?.channels;
    const party = (id: string): PartyDescription => {
      const c: ChannelRecord | undefined = channels?.get(id);
      return {
        channelId: id,
        name: c?.name ?? '',
        endpoint: c ? endpointOf(c.name) : undefined,
        callId: c?.callId,
        callerId: c?.caller ?? { name: '', number: '' },
      };
    };
    return {
      kind,
      destination: plan.destination ?? '',
      transferer: party(plan.sourceId),
      transferees: plan.transfereeIds.map(party),
      bridgeId: plan.sourceBridgeId,
    };
  }
}
