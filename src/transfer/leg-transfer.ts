// Carries a transfer whose target is a new leg still ringing (blind and
// semi-attended transfers) to its end: the transferees hear ringback or
// music meanwhile; when the leg answers it joins their bridge and the
// transferer goes; when it does not, everything is as it was before.
import { isAriError } from '../ari/errors.js';
import { withRetries } from '../ari/retry.js';
import type { TransferProgressState } from '../ari/models.js';
import type { AriRestClient } from '../ari/rest-client.js';
import type { AllEnded } from '../legs/channel-watch.js';
import type { DialAttempt, DialOutcome } from '../legs/dialer.js';
import type { HoldMode } from '../config.js';
import type { Logger } from '../logger.js';
import type { CallRegistry } from '../registry/call-registry.js';
import { hangUpLeg } from '../legs/hang-up.js';
import type { ProgressResult } from './progress.js';

export type LegTransferRest = Pick<
  AriRestClient,
  'addChannel' | 'removeChannel' | 'hangup' | 'startRinging' | 'stopRinging' | 'startMoh' | 'stopMoh'
>;

export interface LegTransfer {
  sourceId: string;
  sourceBridgeId: string;
  transfereeIds: string[];
  leg: DialAttempt;
  holdMode: HoldMode;
  mohClass: string;
  /** Tell the phone 200 as soon as the leg is placed (phones that insist). */
  immediate200: boolean;
  /** Other legs of the transferring phone to hang up once it is over (semi-attended: the consultation call). */
  alsoHangUp: string[];
  /** Blind: a busy or rejecting target is a "no" (603). Semi-attended: any failure is 503. */
  busyIsDecline: boolean;
  /** Watching the transferees since the plan was made; the caller disposes of it. */
  transfereesGone: AllEnded;
}

export interface LegTransferContext {
  /** Resolves if the transfer must give up (shutdown). */
  aborted: Promise<void>;
  rest: LegTransferRest;
  registry: CallRegistry;
  log: Logger;
  progress(state: TransferProgressState): Promise<ProgressResult>;
  /** Resolves true once Asterisk has echoed `state` (FlowContext.echoOf). */
  echoOf(state: TransferProgressState, ms: number): Promise<boolean>;
}

/** How long the phone's other legs wait for Asterisk to finish the final NOTIFY before they are hung up anyway. */
const FINAL_NOTIFY_WAIT_MS = 2000;

export type LegTransferResult = { result: 'completed' | 'failed'; reason?: string };

export async function runLegTransfer(t: LegTransfer, ctx: LegTransferContext): Promise<LegTransferResult> {
  const { log } = ctx;
  const transfereesGone = t.transfereesGone;
  try {
    await startHold(t, ctx);
    if (t.immediate200) {
      void t.leg.originated.then((placed) => (placed ? ctx.progress('channel_answered') : undefined));
    }
    const outcome = await Promise.race([
      t.leg.outcome,
      transfereesGone.ended.then(() => 'transferees-gone' as const),
      ctx.aborted.then(() => 'aborted' as const),
    ]);
    // Checked again: the leg may have answered in the same instant the
    // transferee hung up, and nobody must be connected to an empty call.
    if (outcome === 'transferees-gone' || outcome === 'aborted' || transfereesGone.isEnded) {
      const reason = outcome === 'aborted' ? 'the service is shutting down' : 'the transferee hung up while the target was ringing';
      // The leg first: it may answer at any moment while we tidy up.
      await t.leg.cancel(reason);
      if ((await t.leg.outcome).answered) await hangUpLeg(t.leg.channelId, ctx);
      await stopHold(t, ctx);
      await finish('channel_unavailable', { afterNotify: [], afterEcho: t.alsoHangUp }, ctx);
      return { result: 'failed', reason };
    }
    await stopHold(t, ctx);
    if (!outcome.answered) {
      await finish(t.busyIsDecline ? stateForFailure(outcome) : 'channel_unavailable', { afterNotify: [], afterEcho: t.alsoHangUp }, ctx);
      return { result: 'failed', reason: `target ${outcome.failure}: ${outcome.detail}` };
    }
    return await connect(t, ctx);
  } finally {
    log.debug('leg transfer over');
  }
}

// busy and rejected are the callee's "no": the phone hears 603 Decline.
function stateForFailure(outcome: Extract<DialOutcome, { answered: false }>): TransferProgressState {
  return outcome.failure === 'busy' || outcome.failure === 'rejected' ? 'channel_declined' : 'channel_unavailable';
}

async function connect(t: LegTransfer, ctx: LegTransferContext): Promise<LegTransferResult> {
  const { rest, log } = ctx;
  const legId = t.leg.channelId;
  try {
    await rest.addChannel(t.sourceBridgeId, legId);
    log.info({ step: 'join', channelId: legId, bridgeId: t.sourceBridgeId }, 'new leg joined the transferee');
  } catch (err) {
    log.error({ step: 'join', err, channelId: legId, bridgeId: t.sourceBridgeId }, 'new leg could not join; dropping it');
    await hangUpLeg(legId, ctx);
    await finish('channel_unavailable', { afterNotify: [], afterEcho: t.alsoHangUp }, ctx);
    return { result: 'failed', reason: `the new leg could not join bridge ${t.sourceBridgeId}` };
  }
  // The transferer leaves before the phone is told, so it never hears the
  // new party; its BYE follows the 200 sipfrag.
  await leaveBridge(t.sourceId, t.sourceBridgeId, ctx);
  await finish('channel_answered', { afterNotify: [t.sourceId], afterEcho: t.alsoHangUp }, ctx);
  return { result: 'completed' };
}

/**
 * The final state, then the phone's legs: the transferer's once the NOTIFY
 * is queued (the phone gets the sipfrag before the BYE), the replaced leg
 * (semi-attended: the phone's ringing consultation call) once Asterisk has
 * echoed the state. Asterisk 22.10 reads the replaced leg while it sends the
 * final NOTIFY, without holding a reference: hanging it up meanwhile is a
 * use-after-free (see attended-executor.ts).
 */
async function finish(state: TransferProgressState, legs: { afterNotify: string[]; afterEcho: string[] }, ctx: LegTransferContext): Promise<void> {
  const echoed = legs.afterEcho.length > 0 ? ctx.echoOf(state, FINAL_NOTIFY_WAIT_MS) : Promise.resolve(true);
  const sent = await ctx.progress(state);
  await Promise.all([
    hangUpAll(legs.afterNotify, ctx),
    (async () => {
      if (legs.afterEcho.length === 0) return;
      if (sent === 'sent' && !(await echoed)) {
        ctx.log.warn({ step: 'hangup', channelIds: legs.afterEcho }, 'Asterisk did not echo the final state in time; hanging up anyway');
      }
      await hangUpAll(legs.afterEcho, ctx);
    })(),
  ]);
}

async function startHold(t: LegTransfer, { rest, registry, log }: LegTransferContext): Promise<void> {
  await Promise.all(
    t.transfereeIds.map(async (id) => {
      try {
        if (t.holdMode === 'moh') {
          await rest.startMoh(id, t.mohClass);
          await registry.store.patchChannel(id, { mohByService: true });
        } else {
          // Music from a hold before the REFER would drown the ringback.
          if ((await registry.store.getChannel(id))?.mohByService) {
            await rest.stopMoh(id);
            await registry.store.patchChannel(id, { mohByService: false });
          }
          await rest.startRinging(id);
        }
        log.info({ step: 'hold', channelId: id, mode: t.holdMode }, 'transferee hears the target ringing');
      } catch (err) {
        log.warn({ step: 'hold', err, channelId: id }, 'could not play ringback or music to the transferee');
      }
    }),
  );
}

// Retried: a transferee whose ringback or music is never stopped hears it
// on top of the call it is back in, or of the new one.
async function stopHold(t: LegTransfer, { rest, registry, log }: LegTransferContext): Promise<void> {
  await Promise.all(
    t.transfereeIds.map(async (id) => {
      const record = await registry.store.getChannel(id);
      if (!record || record.hangingUp) return;
      try {
        if (t.holdMode === 'ring') await withRetries(() => rest.stopRinging(id));
        if (record.mohByService) await withRetries(() => rest.stopMoh(id));
        await registry.store.patchChannel(id, { mohByService: false });
      } catch (err) {
        if (!isAriError(err, 404)) log.warn({ step: 'unhold', err, channelId: id }, 'could not stop ringback or music');
      }
    }),
  );
}

async function leaveBridge(channelId: string, bridgeId: string, ctx: LegTransferContext): Promise<void> {
  const record = await ctx.registry.store.getChannel(channelId);
  if (!record || record.hangingUp || record.bridgeId !== bridgeId) return;
  try {
    await ctx.rest.removeChannel(bridgeId, channelId);
  } catch (err) {
    // Gone or already out (422): either way it no longer hears the call.
    if (!isAriError(err)) throw err;
    ctx.log.debug({ err, channelId }, 'transferer already out of the bridge');
  }
}

async function hangUpAll(ids: string[], ctx: LegTransferContext): Promise<void> {
  await Promise.all(ids.map((id) => hangUpLeg(id, ctx)));
}
