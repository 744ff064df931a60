// The blind-transfer flow: 100 Trying at once, plan, check the destination
// against the policy, place the new leg, then let runLegTransfer see it
// through. A destination the policy refuses gets 603 and touches nothing.
// A transferer that hangs up right after the 202 (many phones do) does not
// stop it: the REFER was accepted, so the transferee still goes to the
// destination, as in Asterisk's own core mode.
import type { ChannelRecord } from '../registry/types.js';
import type { TopologySnapshot } from './attended-plan.js';
import { planBlind, type BlindPlan } from './blind-plan.js';
import { callerIdOf } from '../legs/caller-id.js';
import { openTransfer, rejectPlan, watchTransferees, type FlowContext, type FlowOutcome } from './flow.js';
import type { AllEnded } from '../legs/channel-watch.js';
import { runLegTransfer } from './leg-transfer.js';
import { endpointOf, type PartyDescription, type TransferDescription } from './policy.js';

export async function blindTransfer(ctx: FlowContext): Promise<FlowOutcome> {
  const { event, deps } = ctx;
  const { topology, transfererGone } = await openTransfer(ctx);
  const plan = planBlind(event, topology);
  if (!plan.ok) return rejectPlan(ctx, 'blind', plan);
  if (transfererGone || plan.transfererGone) {
    ctx.log.info({ step: 'transferer-gone' }, 'the transferer hung up after its REFER was accepted: the transfer goes on');
  }
  ctx.claimBridges([plan.sourceBridgeId]);
  // Watched from now on: the policy (a webhook) may take a while, and a
  // transferee gone meanwhile must not be sent a new call.
  const transfereesGone = await watchTransferees(ctx, plan.transfereeIds);
  try {
    return await dialDestination(ctx, plan, topology, transfereesGone);
  } finally {
    transfereesGone.dispose();
  }
}

async function dialDestination(ctx: FlowContext, plan: BlindPlan, topology: TopologySnapshot, transfereesGone: AllEnded): Promise<FlowOutcome> {
  const { deps, log, progress } = ctx;
  const decision = await deps.policy.evaluate(describe(plan, topology));
  log.info({ step: 'policy', destination: plan.destination, ...decision }, decision.allowed ? 'destination allowed' : 'destination refused');
  if (!decision.allowed) {
    await progress('channel_declined');
    return { result: 'rejected', reason: `destination refused (${decision.rule}): ${decision.detail}` };
  }
  if (transfereesGone.isEnded) {
    await progress('channel_unavailable');
    return { result: 'failed', reason: 'the transferee hung up before the destination was dialled' };
  }

  const source = topology.channels.get(plan.sourceId);
  const callerFrom = { transferee: topology.channels.get(plan.transfereeIds[0]!), transferer: source, none: undefined };
  const leg = deps.dialer.dial({
    exten: plan.destination,
    purpose: 'transfer',
    callerId: callerIdOf(callerFrom[deps.transfer.callerId]),
    variables: Object.keys(deps.transfer.channelVars).length > 0 ? deps.transfer.channelVars : undefined,
    timeoutMs: deps.transfer.timeoutMs,
    originator: plan.transfereeIds[0],
  });
  const endpoint = source ? endpointOf(source.name) : undefined;
  const immediate200 = endpoint !== undefined && deps.transfer.immediate200Endpoints.some((re) => re.test(endpoint));
  log.info(
    { step: 'dial', destination: plan.destination, legChannelId: leg.channelId, dialString: leg.endpoint, transferees: plan.transfereeIds, immediate200 },
    'blind transfer: dialling the destination',
  );
  return runLegTransfer(
    {
      sourceId: plan.sourceId,
      sourceBridgeId: plan.sourceBridgeId,
      transfereeIds: plan.transfereeIds,
      leg,
      holdMode: deps.transfer.holdMode,
      mohClass: deps.mohClass,
      immediate200,
      busyIsDecline: true,
      alsoHangUp: [],
      transfereesGone,
    },
    { rest: deps.rest, registry: deps.registry, log, progress, echoOf: ctx.echoOf, aborted: ctx.aborted },
  );
}

function describe(plan: BlindPlan, topo: TopologySnapshot): TransferDescription {
  const party = (id: string): PartyDescription => {
    const c: ChannelRecord | undefined = topo.channels.get(id);
    return {
      channelId: id,
      name: c?.name ?? '',
      endpoint: c ? endpointOf(c.name) : undefined,
      callId: c?.callId,
      callerId: c?.caller ?? { name: '', number: '' },
    };
  };
  return {
    kind: 'blind',
    destination: plan.destination,
    transferer: party(plan.sourceId),
    transferees: plan.transfereeIds.map(party),
    bridgeId: plan.sourceBridgeId,
  };
}
