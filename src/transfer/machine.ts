// A transfer as a state table, in the manner of Asterisk's bridge_basic.c:
// each state says what is being done; `next` (pure) takes a transfer and
// what just happened to it (a stimulus) to its next state; the runner
// (runner.ts) carries out a state's effects when the transfer enters it and
// reports how they went as the next stimulus. Plans are data (blind-plan.ts,
// attended-plan.ts); nothing here touches ARI.
//
//   requested ─┬─ blind ──────────────▶ checking ──allowed──▶ dialing ──answered──▶ joining ──joined──▶ finishing ─▶ completed
//              │                           │ refused           │ failed, transferees    │ could not join       │
//              │                           ▼                   │ gone, shutdown         ▼                      ├─▶ failed
//              │                       finishing               └──▶ unwinding ──▶ finishing                    ├─▶ rejected
//              ├─ attended, consultation call ringing ──────▶ dialing (its ringing leg, taken over)            │
//              ├─ attended, consultation call on another node ▶ dialing (a call to that node)               │
//              ├─ attended, both calls up ──▶ moving ──moved──▶ finishing ─────────────────────────────────────┘
//              │                               └─ a move failed (undone) ──▶ finishing
//              └─ no plan (unknown dialog, nobody to transfer, ...) ──▶ finishing (503)
//
//   dialing ──failed, transferer gone, TRANSFER_RECALL──▶ unwinding (hold kept) ──▶ finishing ──▶ recalling ──▶ failed
//   (the recall rings the transferer or a fallback for the transferees; they are hung up if it fails too)
// REFER out (refer-out.ts), blind, a carrier's call to a number off the platform:
//
//   checking ──allowed──▶ referring out ──referred out (the call left)──▶ finishing (200)
//                              ├─ kept, back in its bridge ──▶ dialing (as above)
//                              └─ kept but not back, shutdown ──▶ finishing (503)
//
// A transferer that hangs up right after the 202 does not stop its transfer:
// the REFER was accepted (Asterisk's own core mode goes on too).
import type { ChannelTransferEvent, TransferProgressState } from '../ari/models.js';
import type { DialFailure } from '../legs/dialer.js';
import { planAttended, type AttendedPlan, type TopologySnapshot } from './attended-plan.js';
import { planBlind } from './blind-plan.js';
import type { TransferKind, TransferResult } from './kinds.js';
import type { ProgressResult } from './progress.js';
import { describeRecall, type RecallPlan } from './recall.js';

export type { TransferKind, TransferResult };

/** A REFER with Replaces is an attended transfer; without, blind. */
export function kindOf(event: ChannelTransferEvent): TransferKind {
  return event.refer_to.requested_destination.protocol_id ? 'attended' : 'blind';
}

export enum TransferState {
  /** The REFER was accepted: 100 Trying goes out, not waited for, while the registry is read. */
  Requested = 'requested',
  /** Blind: the policy decides whether the destination may be dialled. */
  Checking = 'checking',
  /** A new leg rings for the transferees, who hear ringback or music. */
  Dialing = 'dialing',
  /** Blind, a carrier's call: it is sent back to the carrier (a REFER); if the carrier keeps it, the destination is dialled. */
  ReferringOut = 'referring-out',
  /** The new leg answered: it joins the transferees, the transferer leaves. */
  Joining = 'joining',
  /** Attended: the transferees move into the target's bridge (undone if a move fails). */
  Moving = 'moving',
  /** The new leg did not make it: it is cancelled, the transferees' ringback or music stops. */
  Unwinding = 'unwinding',
  /** The final sipfrag goes out; the phone's legs go once Asterisk has sent it. */
  Finishing = 'finishing',
  /** Failed with the transferer gone (TRANSFER_RECALL): the transferer is rung back, or a fallback dialled, for the transferees. */
  Recalling = 'recalling',
  /** Attended, from the API: the transferer moves to a consultation bridge and hears the target ring; the transferees hear music. */
  Consulting = 'consulting',
  /** Attended, from the API: the transferer talks to the target, until the API completes or cancels. */
  Consulted = 'consulted',
  /** Attended, from the API: the target moves to the transferees; the transferer goes. */
  Completing = 'completing',
  /** Attended, from the API: the consultation ends; the transferer (and, if kept, the target) goes back to the transferees. */
  Returning = 'returning',
  Completed = 'completed',
  Failed = 'failed',
  Rejected = 'rejected',
}

/** A transfer to a leg that is still ringing: blind (a leg we place) or semi-attended (the consultation call's). */
export interface LegPlan {
  sourceId: string;
  sourceBridgeId: string;
  transfereeIds: string[];
  /** Blind: the destination to dial. */
  destination?: string;
  /** Semi-attended: the transferring phone's ringing consultation call, whose leg is taken over. */
  replacedId?: string;
  /** Across nodes: the call placed goes to `node`, whose instance connects it to `replacedId`'s bridge there. */
  remote?: { node: string; replacedId: string };
  /** Blind: a busy or rejecting target is a "no" (603). Semi-attended: any failure is 503. */
  busyIsDecline: boolean;
  /** From the API: how this transfer's new leg is dialled, instead of the configuration's. */
  dial?: DialOverrides;
}

export interface DialOverrides {
  timeoutMs?: number;
  variables?: Record<string, string>;
  callerId?: string;
}

/**
 * An attended transfer started from the API: the transferer S leaves the
 * transferees' bridge for a consultation bridge with a new call to the
 * destination, then completes (the target joins the transferees, S goes)
 * or cancels (S comes back).
 *
 *   P(S) --- BS --- S     =>   P(S) --- BS (music)      S --- BC --- C
 *                        complete:  P(S) --- BS --- C;   cancel: P(S) --- BS --- S
 */
export interface ConsultPlan {
  sourceId: string;
  sourceBridgeId: string;
  transfereeIds: string[];
  destination: string;
  consultBridgeId: string;
  dial?: DialOverrides;
}

/** How a transfer ends: what the phone is told, then what goes. */
export interface Ending {
  result: TransferResult;
  reason?: string;
  /** The final state sent to the phone. */
  sipfrag: TransferProgressState;
  /** Music on hold we started on these, stopped together with the final state. */
  stopMohOn: string[];
  /** The transferees of a joined leg: their ringback or music stops once the final state is sent (not before: it would delay the 200). */
  unholdAfterNotify: string[];
  /** Hung up once the final state is sent (the phone gets the sipfrag before the BYE). */
  afterNotify: string[];
  /**
   * Hung up once Asterisk has echoed the final state: Asterisk 22.10 reads
   * the replaced leg while it builds that NOTIFY. With a bridge, the leg is
   * taken out of it if it cannot be hung up.
   */
  afterEcho: { channelId: string; bridgeId?: string }[];
  destroyBridges: string[];
  /**
   * Completed: the two sides now talking to each other, each told the
   * other's identity (connected line) once the final state is sent;
   * 'new-leg' is the transfer's new leg.
   */
  nowTalking?: { transfereeIds: string[]; with: string[] | 'new-leg' };
  /** Reason to record when the phone's channel was gone before the final state. */
  ifTransfererGone?: string;
  /** Then a recall for the transferees, who keep their ringback or music meanwhile. */
  recall?: { plan: RecallPlan; leg: LegPlan };
}

export type Transfer =
  | { state: TransferState.Requested; event: ChannelTransferEvent }
  | { state: TransferState.Checking; leg: LegPlan }
  | { state: TransferState.Dialing; leg: LegPlan }
  /** `target`: the redirect endpoint (refer-out.ts); `sent`: redirected before a restart, only its outcome is awaited. */
  | { state: TransferState.ReferringOut; leg: LegPlan; target: string; sent?: true }
  | { state: TransferState.Joining; leg: LegPlan }
  | { state: TransferState.Unwinding; leg: LegPlan; cancel: string | undefined; ending: Ending }
  | { state: TransferState.Moving; plan: AttendedPlan }
  | { state: TransferState.Finishing; ending: Ending }
  | { state: TransferState.Recalling; leg: LegPlan; recall: RecallPlan; reason: string }
  | { state: TransferState.Consulting; consult: ConsultPlan }
  | { state: TransferState.Consulted; consult: ConsultPlan }
  | { state: TransferState.Completing; consult: ConsultPlan }
  /** `keepTarget`: the target, answered, comes back with the transferer instead of being hung up. */
  | { state: TransferState.Returning; consult: ConsultPlan; keepTarget: boolean; ending: Ending }
  | TerminalTransfer;

/** Over: nothing more happens to it. */
export interface TerminalTransfer {
  state: TransferState.Completed | TransferState.Failed | TransferState.Rejected;
  reason?: string;
}

export type Stimulus =
  | { type: 'opened'; topology: TopologySnapshot }
  /** The plan's bridges are being rearranged by another transfer in flight. */
  | { type: 'contended'; bridgeId: string }
  /** `referOutTo`: the call goes back to its carrier, referred there (refer-out.ts). */
  | { type: 'policy'; allowed: true; transfereesGone: boolean; referOutTo?: string }
  | { type: 'policy'; allowed: false; rule: string; detail: string }
  | { type: 'leg-answered' }
  /** `recall`: what to place for the transferees if the transferer is gone (TRANSFER_RECALL), decided by recall.ts. */
  | { type: 'leg-failed'; failure: DialFailure; detail: string; recall?: RecallPlan }
  | { type: 'leg-lost' }
  | { type: 'transferees-gone' }
  | { type: 'shutdown' }
  | { type: 'joined' }
  | { type: 'join-failed' }
  | { type: 'moved' }
  | { type: 'move-failed'; step: string; error: string; undone: boolean }
  | { type: 'unwound' }
  /** REFER out: the carrier's call left Asterisk. */
  | { type: 'referred-out' }
  /** REFER out: the carrier kept its call; `restored`: it is back in its bridge. */
  | { type: 'refer-kept'; detail: string; restored: boolean }
  | { type: 'finished'; sent: ProgressResult }
  | { type: 'recalled'; answered: true }
  | { type: 'recalled'; answered: false; detail: string }
  /** From the API (POST /transfers/{id}/complete or /cancel). */
  | { type: 'command'; command: TransferCommand }
  | { type: 'transferer-gone' }
  | { type: 'target-gone' }
  | { type: 'returned' };

export type TransferCommand = 'complete' | 'cancel';

/** A decision worth a log line (with its `step`, so observers see it too). */
export interface Note {
  level: 'info' | 'warn';
  step: string;
  msg: string;
  fields?: Record<string, unknown>;
}

export interface Transition {
  transfer: Transfer;
  note?: Note;
}

export const TERMINAL: ReadonlySet<TransferState> = new Set([
  TransferState.Completed,
  TransferState.Failed,
  TransferState.Rejected,
]);

export function isTerminal(t: Transfer): t is TerminalTransfer {
  return TERMINAL.has(t.state);
}


export class UnexpectedStimulus extends Error {
  readonly code = 'ERR_TRANSFER_UNEXPECTED_STIMULUS';
  constructor(state: TransferState, stimulus: Stimulus['type']) {
    super(`transfer in state ${state} cannot take stimulus ${stimulus}`);
  }
}

type Effects = 'stopMohOn' | 'unholdAfterNotify' | 'afterNotify' | 'afterEcho' | 'destroyBridges';
/** An ending's effects, none yet. */
export const noEffects = (): Pick<Ending, Effects> => ({ stopMohOn: [], unholdAfterNotify: [], afterNotify: [], afterEcho: [], destroyBridges: [] });

function finishing(ending: Omit<Ending, Effects> & Partial<Pick<Ending, Effects>>): Transfer {
  return { state: TransferState.Finishing, ending: { ...noEffects(), ...ending } };
}

/** The phone's other legs that go with the transfer (semi-attended: its ringing consultation call). */
function phoneLegsOf(leg: LegPlan): Ending['afterEcho'] {
  return leg.replacedId ? [{ channelId: leg.replacedId }] : [];
}

// busy and rejected are the callee's "no": the phone hears 603 Decline.
function sipfragForFailure(leg: LegPlan, failure: DialFailure): TransferProgressState {
  return leg.busyIsDecline && (failure === 'busy' || failure === 'rejected') ? 'channel_declined' : 'channel_unavailable';
}

export function next(t: Transfer, s: Stimulus): Transition {
  switch (t.state) {
    case TransferState.Requested:
      if (s.type === 'opened') return kindOf(t.event) === 'blind' ? openBlind(t.event, s) : openAttended(t.event, s);
      if (s.type === 'contended') {
        return rejected(kindOf(t.event), { reason: 'bridge-busy', detail: `another transfer is rearranging bridge ${s.bridgeId}` });
      }
      break;
    case TransferState.Checking:
      if (s.type !== 'policy') break;
      if (!s.allowed) {
        return {
          transfer: finishing({ result: 'rejected', reason: `destination refused (${s.rule}): ${s.detail}`, sipfrag: 'channel_declined' }),
        };
      }
      if (s.transfereesGone) {
        return {
          transfer: finishing({ result: 'failed', reason: 'the transferee hung up before the destination was dialled', sipfrag: 'channel_unavailable' }),
        };
      }
      if (s.referOutTo !== undefined) return { transfer: { state: TransferState.ReferringOut, leg: t.leg, target: s.referOutTo } };
      return { transfer: { state: TransferState.Dialing, leg: t.leg } };
    case TransferState.ReferringOut:
      return referredOut(t.leg, s) ?? unexpected(t.state, s);
    case TransferState.Dialing:
      switch (s.type) {
        case 'leg-answered':
          return { transfer: { state: TransferState.Joining, leg: t.leg } };
        case 'leg-failed': {
          const failed = unwind(t.leg, undefined, sipfragForFailure(t.leg, s.failure), `target ${s.failure}: ${s.detail}`);
          if (s.recall === undefined || failed.transfer.state !== TransferState.Unwinding) return failed;
          return {
            transfer: { ...failed.transfer, ending: { ...failed.transfer.ending, recall: { plan: s.recall, leg: t.leg } } },
            note: { level: 'info', step: 'recall', msg: 'the transfer failed after the transferer left: recalling', fields: { recall: s.recall } },
          };
        }
        case 'transferees-gone':
          return unwind(t.leg, 'the transferee hung up while the target was ringing');
        case 'shutdown':
          return unwind(t.leg, 'the service is shutting down');
        case 'leg-lost':
          return {
            transfer: finishing({
              result: 'rejected',
              reason: 'the consultation call stopped ringing before the transfer could take it over',
              sipfrag: 'channel_unavailable',
            }),
            note: { level: 'warn', step: 'rejected', msg: 'semi-attended transfer: the consultation call stopped ringing meanwhile', fields: { replacedChannelId: t.leg.replacedId } },
          };
      }
      break;
    case TransferState.Joining:
      if (s.type === 'joined') {
        return {
          // The transferer has left the bridge: its BYE follows the 200 sipfrag.
          transfer: finishing({
            result: 'completed',
            sipfrag: 'channel_answered',
            unholdAfterNotify: t.leg.transfereeIds,
            afterNotify: [t.leg.sourceId],
            afterEcho: phoneLegsOf(t.leg),
            // Across nodes the new leg is the trunk call: the party is on the other node.
            ...(t.leg.remote ? {} : { nowTalking: { transfereeIds: t.leg.transfereeIds, with: 'new-leg' as const } }),
          }),
        };
      }
      if (s.type === 'join-failed') {
        return {
          transfer: finishing({
            result: 'failed',
            reason: `the new leg could not join bridge ${t.leg.sourceBridgeId}`,
            sipfrag: 'channel_unavailable',
            afterEcho: phoneLegsOf(t.leg),
          }),
        };
      }
      break;
    case TransferState.Unwinding:
      if (s.type === 'unwound') return { transfer: { state: TransferState.Finishing, ending: t.ending } };
      break;
    case TransferState.Moving:
      if (s.type === 'moved') {
        const p = t.plan;
        return {
          transfer: finishing({
            result: 'completed',
            sipfrag: 'channel_answered',
            stopMohOn: p.stopMohOn,
            afterEcho: [{ channelId: p.replacedId, bridgeId: p.targetBridgeId }, { channelId: p.sourceId }],
            destroyBridges: p.destroyBridges,
            nowTalking: { transfereeIds: p.transfereeIds, with: p.targetIds },
            ifTransfererGone: 'transferer hung up before the 200 sipfrag',
          }),
        };
      }
      if (s.type === 'move-failed') {
        const undo = s.undone ? 'undone' : 'NOT fully undone';
        return { transfer: finishing({ result: 'failed', reason: `${s.step} failed (${s.error}); ${undo}`, sipfrag: 'channel_unavailable' }) };
      }
      break;
    case TransferState.Finishing:
      if (s.type === 'finished') {
        const { result, reason, ifTransfererGone, recall } = t.ending;
        if (recall) return { transfer: { state: TransferState.Recalling, leg: recall.leg, recall: recall.plan, reason: reason ?? 'the transfer failed' } };
        const why = s.sent === 'channel-gone' && ifTransfererGone ? ifTransfererGone : reason;
        return { transfer: { state: TERMINAL_OF[result], ...(why !== undefined ? { reason: why } : {}) } };
      }
      break;
    case TransferState.Consulting:
      return fromConsulting(t.consult, s) ?? unexpected(t.state, s);
    case TransferState.Consulted:
      return fromConsulted(t.consult, s) ?? unexpected(t.state, s);
    case TransferState.Completing:
      if (s.type === 'moved') {
        const c = t.consult;
        return {
          transfer: finishing({
            result: 'completed',
            sipfrag: 'channel_answered',
            stopMohOn: c.transfereeIds,
            afterNotify: [c.sourceId],
            destroyBridges: [c.consultBridgeId],
            nowTalking: { transfereeIds: c.transfereeIds, with: 'new-leg' },
          }),
        };
      }
      // The move was undone: the transferer still talks to the target; all three end up together.
      if (s.type === 'move-failed') return returning(t.consult, true, `${s.step} failed (${s.error}): the three parties are joined instead`);
      break;
    case TransferState.Returning:
      if (s.type === 'returned') return { transfer: { state: TransferState.Finishing, ending: t.ending } };
      break;
    case TransferState.Recalling:
      // The transfer failed either way; the recall decides whether the transferees' call goes on.
      if (s.type === 'recalled') {
        const how = s.answered ? 'answered: the transferees are connected to it' : `failed (${s.detail}): the transferees were hung up`;
        return { transfer: { state: TransferState.Failed, reason: `${t.reason}; recall to ${describeRecall(t.recall)} ${how}` } };
      }
      break;
    default:
      break;
  }
  throw new UnexpectedStimulus(t.state, s.type);
}

/** REFER out's outcomes; undefined for a stimulus it does not take. */
function referredOut(leg: LegPlan, s: Stimulus): Transition | undefined {
  switch (s.type) {
    case 'referred-out':
      // The carrier has the call: the transferer's part is over, and the bridge is left to it alone.
      return {
        transfer: finishing({ result: 'completed', sipfrag: 'channel_answered', afterNotify: [leg.sourceId], destroyBridges: [leg.sourceBridgeId] }),
      };
    case 'refer-kept':
      if (!s.restored) {
        return { transfer: finishing({ result: 'failed', reason: `${s.detail}; and it could not be put back in its bridge`, sipfrag: 'channel_unavailable' }) };
      }
      return {
        transfer: { state: TransferState.Dialing, leg },
        note: { level: 'info', step: 'refer-out', msg: 'the carrier kept the call: dialling the destination instead', fields: { reason: s.detail } },
      };
    case 'shutdown':
      return { transfer: finishing({ result: 'failed', reason: 'the service is shutting down', sipfrag: 'channel_unavailable' }) };
    default:
      return undefined;
  }
}

function unexpected(state: TransferState, s: Stimulus): never {
  throw new UnexpectedStimulus(state, s.type);
}

const TERMINAL_OF = {
  completed: TransferState.Completed,
  failed: TransferState.Failed,
  rejected: TransferState.Rejected,
} as const;

function returning(consult: ConsultPlan, keepTarget: boolean, reason: string): Transition {
  return {
    transfer: {
      state: TransferState.Returning,
      consult,
      keepTarget,
      ending: { ...noEffects(), result: 'failed', reason, sipfrag: 'channel_unavailable', stopMohOn: consult.transfereeIds, destroyBridges: [consult.consultBridgeId] },
    },
  };
}

// Ringing: a "no" from the policy touches nothing; anything else brings the transferer back.
function fromConsulting(consult: ConsultPlan, s: Stimulus): Transition | undefined {
  switch (s.type) {
    case 'policy':
      if (s.allowed) return undefined;
      return { transfer: finishing({ result: 'rejected', reason: `destination refused (${s.rule}): ${s.detail}`, sipfrag: 'channel_declined' }) };
    case 'leg-answered':
      return { transfer: { state: TransferState.Consulted, consult } };
    case 'leg-failed':
      return returning(consult, false, `target ${s.failure}: ${s.detail}`);
    case 'command':
      return s.command === 'cancel' ? returning(consult, false, 'cancelled through the API before the target answered') : undefined;
    case 'transferer-gone':
      return returning(consult, false, 'the transferer hung up before the target answered');
    case 'transferees-gone':
      return returning(consult, false, 'the transferees hung up during the consultation');
    case 'shutdown':
      return returning(consult, false, 'the service is shutting down');
    default:
      return undefined;
  }
}

// Talking: the transferer hanging up completes the transfer, as in Asterisk's own attended transfers.
function fromConsulted(consult: ConsultPlan, s: Stimulus): Transition | undefined {
  switch (s.type) {
    case 'command':
      return s.command === 'complete' ? { transfer: { state: TransferState.Completing, consult } } : returning(consult, false, 'cancelled through the API');
    case 'transferer-gone':
      return { transfer: { state: TransferState.Completing, consult }, note: { level: 'info', step: 'complete', msg: 'the transferer hung up during the consultation: completing' } };
    case 'target-gone':
      return returning(consult, false, 'the target hung up during the consultation');
    // Nobody loses a call: the transferer and the target go on together in the transferees' bridge.
    case 'transferees-gone':
      return returning(consult, true, 'the transferees hung up during the consultation');
    case 'shutdown':
      return returning(consult, true, 'the service is shutting down: the three parties are joined');
    default:
      return undefined;
  }
}

function unwind(leg: LegPlan, cancel: string | undefined, sipfrag: TransferProgressState = 'channel_unavailable', reason = cancel): Transition {
  return {
    transfer: {
      state: TransferState.Unwinding,
      leg,
      cancel,
      ending: { ...noEffects(), result: 'failed', ...(reason !== undefined ? { reason } : {}), sipfrag, afterEcho: phoneLegsOf(leg) },
    },
  };
}

function rejected(kind: TransferKind, rejection: { reason: string; detail: string }): Transition {
  return {
    transfer: finishing({ result: 'rejected', reason: rejection.detail, sipfrag: 'channel_unavailable' }),
    note: { level: 'warn', step: 'rejected', msg: `${kind} transfer rejected`, fields: { reason: rejection.reason, detail: rejection.detail } },
  };
}

function openBlind(event: ChannelTransferEvent, s: Extract<Stimulus, { type: 'opened' }>): Transition {
  const plan = planBlind(event, s.topology);
  if (!plan.ok) return rejected('blind', plan);
  const leg: LegPlan = {
    sourceId: plan.sourceId,
    sourceBridgeId: plan.sourceBridgeId,
    transfereeIds: plan.transfereeIds,
    destination: plan.destination,
    busyIsDecline: true,
  };
  return { transfer: { state: TransferState.Checking, leg }, ...transfererGoneNote(plan.transfererGone) };
}

// It goes on when the transferer hung up right after the 202 (many phones
// do): the REFER was accepted, as in Asterisk's own core mode.
function transfererGoneNote(gone: boolean): { note?: Note } {
  return gone ? { note: { level: 'info', step: 'transferer-gone', msg: 'the transferer hung up after its REFER was accepted: the transfer goes on' } } : {};
}

function openAttended(event: ChannelTransferEvent, s: Extract<Stimulus, { type: 'opened' }>): Transition {
  const plan = planAttended(event, s.topology);
  if (!plan.ok) return rejected('attended', plan);
  if (plan.mode === 'remote') {
    const leg: LegPlan = {
      sourceId: plan.sourceId,
      sourceBridgeId: plan.sourceBridgeId,
      transfereeIds: plan.transfereeIds,
      remote: { node: plan.node, replacedId: plan.replacedId },
      busyIsDecline: false,
    };
    return {
      transfer: { state: TransferState.Dialing, leg },
      note: {
        level: 'info',
        step: 'plan',
        msg: 'attended transfer planned across nodes: a call to the other node joins the transferees to its target',
        fields: { node: plan.node, replacedChannelId: plan.replacedId, transferees: plan.transfereeIds, ...(plan.transfererGone ? { transfererGone: true } : {}) },
      },
    };
  }
  if (plan.mode === 'ringing') {
    const leg: LegPlan = {
      sourceId: plan.sourceId,
      sourceBridgeId: plan.sourceBridgeId,
      transfereeIds: plan.transfereeIds,
      replacedId: plan.replacedId,
      busyIsDecline: false,
    };
    return { transfer: { state: TransferState.Dialing, leg }, ...transfererGoneNote(plan.transfererGone) };
  }
  return {
    transfer: { state: TransferState.Moving, plan },
    note: {
      level: 'info',
      step: 'plan',
      msg: 'attended transfer planned',
      fields: {
        replacedChannelId: plan.replacedId,
        resolvedBy: plan.resolvedBy,
        transferees: plan.transfereeIds,
        targets: plan.targetIds,
        targetBridgeId: plan.targetBridgeId,
        ...(plan.transfererGone ? { transfererGone: true } : {}),
      },
    },
  };
}

/** The bridges a transfer in this state rearranges: the router leaves them alone meanwhile. */
export function bridgesOf(t: Transfer): string[] {
  if ('leg' in t) return [t.leg.sourceBridgeId];
  if (t.state === TransferState.Moving) return [t.plan.sourceBridgeId, t.plan.targetBridgeId];
  if ('consult' in t) return [t.consult.sourceBridgeId, t.consult.consultBridgeId];
  return [];
}
