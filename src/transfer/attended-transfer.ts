// The attended-transfer flow: 100 Trying at once, plan, then either the
// bridge moves (both calls connected) or, when the consultation call still
// rings, a semi-attended transfer of its ringing leg.
import { executeAttended } from './attended-executor.js';
import { planAttended, type SemiAttendedPlan } from './attended-plan.js';
import { openTransfer, rejectPlan, TRANSFERER_GONE, watchTransferees, type FlowContext, type FlowOutcome } from './flow.js';
import { runLegTransfer } from './leg-transfer.js';

export async function attendedTransfer(ctx: FlowContext): Promise<FlowOutcome> {
  const { event, deps, log, progress } = ctx;
  const { topology, transfererGone } = await openTransfer(ctx);
  if (transfererGone) return TRANSFERER_GONE;

  const plan = planAttended(event, topology);
  if (!plan.ok) return rejectPlan(ctx, 'attended', plan);
  if (plan.mode === 'ringing') return semiAttended(plan, ctx);

  ctx.claimBridges([plan.sourceBridgeId, plan.targetBridgeId]);
  log.info(
    {
      step: 'plan',
      replacedChannelId: plan.replacedId,
      resolvedBy: plan.resolvedBy,
      transferees: plan.transfereeIds,
      targets: plan.targetIds,
      targetBridgeId: plan.targetBridgeId,
    },
    'attended transfer planned',
  );
  const executed = await executeAttended(plan, { rest: deps.rest, registry: deps.registry, log, progress, echoOf: ctx.echoOf });
  if (!executed.ok) {
    await progress('channel_unavailable');
    const undo = executed.undone ? 'undone' : 'NOT fully undone';
    const error = executed.error instanceof Error ? executed.error.message : String(executed.error);
    return { result: 'failed', reason: `${executed.failedStep} failed (${error}); ${undo}` };
  }
  if (executed.answered === 'channel-gone') return { result: 'completed', reason: 'transferer hung up before the 200 sipfrag' };
  return { result: 'completed' };
}

async function semiAttended(plan: SemiAttendedPlan, ctx: FlowContext): Promise<FlowOutcome> {
  const { deps, log, progress } = ctx;
  const leg = deps.pendingDials.takeOver(plan.replacedId);
  if (!leg) {
    // It answered or failed between planning and now.
    log.warn({ step: 'rejected', replacedChannelId: plan.replacedId }, 'semi-attended transfer: the consultation call stopped ringing meanwhile');
    await progress('channel_unavailable');
    return { result: 'rejected', reason: 'the consultation call stopped ringing before the transfer could take it over' };
  }
  ctx.claimBridges([plan.sourceBridgeId]);
  log.info(
    { step: 'plan', replacedChannelId: plan.replacedId, resolvedBy: plan.resolvedBy, transferees: plan.transfereeIds, legChannelId: leg.channelId },
    'semi-attended transfer planned: the ringing leg goes to the transferee',
  );
  const transfereesGone = await watchTransferees(ctx, plan.transfereeIds);
  try {
    return await runLegTransfer(
      {
        sourceId: plan.sourceId,
        sourceBridgeId: plan.sourceBridgeId,
        transfereeIds: plan.transfereeIds,
        leg,
        holdMode: deps.transfer.holdMode,
        mohClass: deps.mohClass,
        immediate200: false,
        busyIsDecline: false,
        alsoHangUp: [plan.replacedId],
        transfereesGone,
      },
      { rest: deps.rest, registry: deps.registry, log, progress, echoOf: ctx.echoOf, aborted: ctx.aborted },
    );
  } finally {
    transfereesGone.dispose();
  }
}
