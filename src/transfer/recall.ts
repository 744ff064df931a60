// Recall: a blind or semi-attended transfer failed after the transferer
// hung up, so the transferees are alone in their bridge. With
// TRANSFER_RECALL they are not hung up: the transferer is rung back (the
// endpoint its channel came from), or a fallback destination is dialled.
// Pure: which call to place, from the configuration and what is known of
// the transferer; and the cause the transferees' call ends with when the
// recall fails too.
import type { RecallSetting } from '../config.js';
import type { DialFailure } from '../legs/dialer.js';

/** The call a recall places. */
export type RecallPlan =
  /** Rung back on its own endpoint: a whole dial string. */
  | { to: 'transferer'; endpoint: string }
  /** Dialled as a blind-transfer destination is (TRANSFER_DIAL_TEMPLATE). */
  | { to: 'destination'; destination: string };

export type RecallDecision = { recall: RecallPlan } | { recall: undefined; why: string };

/**
 * `transfererChannel`: the transferer's channel name (as the REFER's event
 * or the registry gave it), if known.
 */
export function planRecall(setting: RecallSetting, transfererGone: boolean, transfererChannel: string | undefined): RecallDecision {
  if (setting.to === 'off') return { recall: undefined, why: 'TRANSFER_RECALL is off' };
  if (!transfererGone) return { recall: undefined, why: 'the transferer is still in the call' };
  if (setting.to === 'destination') return { recall: { to: 'destination', destination: setting.destination } };
  const endpoint = transfererChannel === undefined ? undefined : dialStringOf(transfererChannel);
  if (endpoint === undefined) {
    return { recall: undefined, why: `the transferer's endpoint is not known (channel ${transfererChannel ?? 'unknown'})` };
  }
  return { recall: { to: 'transferer', endpoint } };
}

/**
 * `PJSIP/1002-0000000a` → `PJSIP/1002`: the endpoint the channel belongs
 * to. Only PJSIP channels: a Local or other channel names no phone to ring.
 */
export function dialStringOf(channelName: string): string | undefined {
  const m = /^PJSIP\/(.+)-[0-9a-f]+$/i.exec(channelName);
  return m ? `PJSIP/${m[1]}` : undefined;
}

export function describeRecall(plan: RecallPlan): string {
  return plan.to === 'transferer' ? `the transferer (${plan.endpoint})` : `the fallback destination ${plan.destination}`;
}

/**
 * The hangup reason (ARI's names for Q.850 causes) the transferees' call
 * ends with when the recall failed too: the recall's own failure, so the
 * caller's side hears why the call ended.
 */
export function hangupReasonOf(failure: DialFailure): string {
  switch (failure) {
    case 'busy':
      return 'busy';
    case 'no-answer':
      return 'no_answer';
    case 'rejected':
      return 'rejected';
    case 'unreachable':
      return 'unallocated';
    case 'congestion':
      return 'congestion';
    default:
      return 'normal';
  }
}
