// REFER out: a blind transfer of a carrier's call to a number off the
// platform sends the call back to the carrier (ARI redirect: Asterisk
// REFERs the carrier) instead of placing a new leg, so the media no longer
// flows through Asterisk. Facts from the real Asterisk 22.10.1
// (test/fixtures/traces/refer-out/README.md) shape it:
//  - ARI reports nothing of the REFER's outcome: no event, no variable.
//    Success shows only as the carrier hanging its call up (its BYE).
//  - A synchronous command queued on the channel after the redirect
//    (answer, harmless on an Up channel) returns once the far end has
//    answered the REFER for good (final NOTIFY or error response), but only
//    with the channel out of any bridge: bridged, a 403 can leave the
//    channel's commands stuck until it hangs up (a race, seen 5 times in 9).
// So: out of the bridge, redirect, wait for that command, then give the
// carrier a moment to hang up; still there means refused, and the channel
// goes back into its bridge for the ordinary blind transfer.
import { isAriError } from '../ari/errors.js';
import type { AriRestClient } from '../ari/rest-client.js';
import type { ReferOutConfig } from '../config.js';
import type { AllEnded } from '../legs/channel-watch.js';
import type { ChannelRecord } from '../registry/types.js';
import type { StepJournal } from './journal.js';
import { endpointOf } from './policy.js';

/**
 * How long the carrier has, once it has answered the REFER for good, to
 * hang its call up: it does right after its NOTIFY 200 (205 ms in the
 * recording). Still up after this, it did not take the call.
 */
export const REFER_OUT_BYE_GRACE_MS = 2000;

/** The requests a REFER out makes; over HTTP (the answer it waits on may take as long as the carrier's new call rings). */
export type ReferOutRest = Pick<AriRestClient, 'redirect' | 'answer' | 'removeChannel' | 'addChannel'>;

/**
 * The redirect endpoint for this transfer, or undefined when it is not one
 * to send back: exactly one transferee, on a trunk TRANSFER_REFER_OUT_ENDPOINTS
 * names, to a destination TRANSFER_REFER_OUT_DESTINATIONS names.
 */
export function referOutTarget(config: ReferOutConfig | undefined, destination: string | undefined, transferees: (ChannelRecord | undefined)[]): string | undefined {
  if (!config || destination === undefined || transferees.length !== 1) return undefined;
  const endpoint = transferees[0] ? endpointOf(transferees[0].name) : undefined;
  if (endpoint === undefined || !config.endpoints.some((re) => re.test(endpoint))) return undefined;
  if (!config.destinations.some((re) => re.test(destination))) return undefined;
  return config.target.replaceAll('{exten}', destination);
}

export type ReferOutcome =
  /** The carrier's call left Asterisk: it took the call. */
  | { taken: true }
  /** The carrier kept its call (refused, failed, or no answer in time); `restored`: back in its bridge; `aborted`: the service is shutting down. */
  | { taken: false; detail: string; restored: boolean; aborted: boolean };

export interface ReferOutRequest {
  channelId: string;
  bridgeId: string;
  /** The redirect endpoint (PJSIP/...). */
  target: string;
  /** Ends when the carrier's channel does. */
  gone: AllEnded;
  /** How long the carrier may take to answer the REFER for good. */
  timeoutMs: number;
  aborted: Promise<void>;
  /** Redirected before a restart: only its outcome is awaited. */
  alreadySent?: boolean;
}

export async function referOut(req: ReferOutRequest, rest: ReferOutRest, journal: StepJournal): Promise<ReferOutcome> {
  const { channelId, bridgeId, target, gone } = req;
  if (!req.alreadySent) {
    try {
      await rest.removeChannel(bridgeId, channelId);
      await rest.redirect(channelId, target);
    } catch (err) {
      if (gone.isEnded) return { taken: true };
      journal.warn('refer-out', { err, channelId, target }, 'could not send the call back to its carrier');
      return refused(req, rest, journal, `redirect failed: ${err instanceof Error ? err.message : String(err)}`, false);
    }
    journal.info('refer-out', { channelId, target }, 'call sent back to its carrier: Asterisk REFERs it');
  }
  const deadline = delay(req.timeoutMs);
  const answered = await Promise.race([
    referAnswered(channelId, rest, gone).then(() => 'answered' as const),
    gone.ended.then(() => 'gone' as const),
    deadline.then(() => 'timeout' as const),
    req.aborted.then(() => 'aborted' as const),
  ]);
  if (answered === 'answered' && !gone.isEnded) {
    await Promise.race([gone.ended, delay(REFER_OUT_BYE_GRACE_MS)]);
  }
  if (gone.isEnded) {
    journal.info('refer-out', { channelId }, 'the carrier took the call: its call left Asterisk');
    return { taken: true };
  }
  const detail = {
    answered: 'the carrier kept its call (REFER refused or failed)',
    gone: 'the carrier kept its call',
    timeout: `the carrier did not answer the REFER within ${req.timeoutMs} ms`,
    aborted: 'the service is shutting down',
  }[answered];
  return refused(req, rest, journal, detail, answered === 'aborted');
}

/** Back into its bridge, as before the REFER. */
async function refused(req: ReferOutRequest, rest: ReferOutRest, journal: StepJournal, detail: string, aborted: boolean): Promise<ReferOutcome> {
  try {
    await rest.addChannel(req.bridgeId, req.channelId);
    journal.warn('refer-out', { channelId: req.channelId, reason: detail }, 'the carrier did not take the call: it is back in its bridge');
    return { taken: false, detail, restored: true, aborted };
  } catch (err) {
    journal.error('refer-out', { err, channelId: req.channelId, reason: detail }, 'the carrier did not take the call, and it could not be put back in its bridge');
    return { taken: false, detail, restored: false, aborted };
  }
}

/**
 * Resolves once the channel's Stasis commands have run past the redirect:
 * answer is synchronous and changes nothing on an Up channel. A request
 * that times out (the carrier's new call may ring for long) is asked again;
 * an error means the channel is gone or going, which the watch tells.
 */
async function referAnswered(channelId: string, rest: ReferOutRest, gone: AllEnded): Promise<void> {
  while (!gone.isEnded) {
    try {
      await rest.answer(channelId);
      return;
    } catch (err) {
      if (!isAriError(err) || err.kind !== 'timeout') return;
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
