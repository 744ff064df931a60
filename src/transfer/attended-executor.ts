// Carries out an AttendedPlan against ARI, undoing the bridge moves if one
// fails. Order matters only where the phone or the parties would notice:
// the media path first, then the final NOTIFY, then the cleanup.
import { isAriError } from '../ari/errors.js';
import { withRetries } from '../ari/retry.js';
import type { AriRestClient } from '../ari/rest-client.js';
import type { Logger } from '../logger.js';
import type { CallRegistry } from '../registry/call-registry.js';
import type { TransferProgressState } from '../ari/models.js';
import type { AttendedPlan, Move } from './attended-plan.js';
import { hangUpLeg } from '../legs/hang-up.js';
import type { ProgressResult } from './progress.js';

export type ExecutorRest = Pick<AriRestClient, 'addChannel' | 'removeChannel' | 'hangup' | 'destroyBridge' | 'stopMoh'>;

export interface ExecutionContext {
  rest: ExecutorRest;
  registry: CallRegistry;
  log: Logger;
  /** Sends transfer_progress on the transfer's source channel. */
  progress(state: TransferProgressState): Promise<ProgressResult>;
  /** Resolves true once Asterisk has echoed `state` (see FlowContext.echoOf), false after `ms`. */
  echoOf(state: TransferProgressState, ms: number): Promise<boolean>;
}

/** How long the replaced leg waits for Asterisk to finish the final NOTIFY before it is hung up anyway. */
const FINAL_NOTIFY_WAIT_MS = 2000;

export type ExecutionResult =
  | { ok: true; answered: ProgressResult }
  | { ok: false; failedStep: string; error: unknown; undone: boolean };

export async function executeAttended(plan: AttendedPlan, ctx: ExecutionContext): Promise<ExecutionResult> {
  const { rest, log, progress } = ctx;

  const moved: Move[] = [];
  for (const move of plan.moves) {
    try {
      await rest.addChannel(move.to, move.channelId);
      moved.push(move);
      log.info({ step: 'move', channelId: move.channelId, from: move.from, to: move.to }, 'transferee moved to the target bridge');
    } catch (error) {
      log.error({ step: 'move', err: error, channelId: move.channelId, to: move.to }, 'bridge move failed; undoing');
      // A timeout says nothing about whether Asterisk moved the channel:
      // moving it back is then part of the undo too.
      if (isAriError(error) && error.kind !== 'http') moved.push(move);
      const undone = await undoMoves(moved, ctx);
      return { ok: false, failedStep: `move ${move.channelId} to bridge ${move.to}`, error, undone };
    }
  }

  // The parties now talk: tell the phone, stop our music.
  const echoed = ctx.echoOf('channel_answered', FINAL_NOTIFY_WAIT_MS);
  const [answered] = await Promise.all([progress('channel_answered'), ...plan.stopMohOn.map((id) => stopMusic(id, ctx))]);
  // Asterisk 22.10 reads the replaced leg's channel while it sends that
  // NOTIFY (res_pjsip_refer's ari_notify builds the echo from it without
  // holding a reference): hanging the leg up meanwhile is a use-after-free.
  // Seen on the real Asterisk under load: a thread stuck locking the freed
  // channel, then an abort on a corrupted heap (probably also asterisk#2166's
  // deadlock). So the legs go once the echo says that NOTIFY is out; the
  // source leg after it anyway, so the phone gets the 200 before the BYE.
  if (answered === 'sent' && !(await echoed)) {
    log.warn({ step: 'hangup', channelId: plan.replacedId }, 'Asterisk did not echo the final state in time; hanging up the replaced leg anyway');
  }
  await Promise.all([
    dropReplacedLeg(plan, ctx),
    hangUpLeg(plan.sourceId, ctx),
    ...plan.destroyBridges.map((id) => destroyBridge(id, ctx)),
  ]);
  return { ok: true, answered };
}

// The replaced leg must leave the call even if Asterisk will not hang it
// up: otherwise the phone stays in a three-way call with both parties.
async function dropReplacedLeg(plan: AttendedPlan, ctx: ExecutionContext): Promise<void> {
  if (await hangUpLeg(plan.replacedId, ctx)) return;
  try {
    await ctx.rest.removeChannel(plan.targetBridgeId, plan.replacedId);
    ctx.log.warn({ step: 'remove', channelId: plan.replacedId, bridgeId: plan.targetBridgeId }, 'replaced leg taken out of the call instead');
  } catch (err) {
    ctx.log.error({ step: 'remove', err, channelId: plan.replacedId }, 'replaced leg could not be taken out of the call either');
  }
}

async function undoMoves(moved: Move[], { rest, log }: ExecutionContext): Promise<boolean> {
  let undone = true;
  for (const move of [...moved].reverse()) {
    try {
      await rest.addChannel(move.from, move.channelId);
      log.info({ step: 'undo-move', channelId: move.channelId, to: move.from }, 'transferee moved back');
    } catch (err) {
      undone = false;
      log.error({ step: 'undo-move', err, channelId: move.channelId, to: move.from }, 'could not move the transferee back');
    }
  }
  return undone;
}

// Retried: music left playing would go on over the new call.
async function stopMusic(channelId: string, { rest, registry, log }: ExecutionContext): Promise<void> {
  try {
    await withRetries(() => rest.stopMoh(channelId));
    log.info({ step: 'stop-moh', channelId }, 'music on hold stopped on the transferee');
  } catch (err) {
    if (!isAriError(err, 404)) log.warn({ step: 'stop-moh', err, channelId }, 'could not stop music on hold');
  }
  await registry.store.patchChannel(channelId, { mohByService: false });
}

// Retried like a hangup: nobody else deletes a bridge the transfer emptied
// (with ROUTING=none it is not the router's), so a lost DELETE leaks it.
async function destroyBridge(bridgeId: string, { rest, log }: ExecutionContext): Promise<void> {
  try {
    await withRetries(() => rest.destroyBridge(bridgeId));
    log.info({ step: 'destroy-bridge', bridgeId }, 'emptied bridge deleted');
  } catch (err) {
    if (isAriError(err, 404)) log.info({ step: 'destroy-bridge', bridgeId }, 'bridge already gone');
    else log.error({ step: 'destroy-bridge', err, bridgeId }, 'could not delete the emptied bridge');
  }
}
