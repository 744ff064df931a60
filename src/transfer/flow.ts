// What the handler hands each transfer's run (runner.ts): the event, the
// service's parts, and the handler's own services (progress, echo, claims).
import type { TransferProgressState } from '../ari/models.js';
import type { AllEnded } from '../legs/channel-watch.js';
import type { TransferCommand, TransferResult, TransferState } from './machine.js';
import type { AriRestClient } from '../ari/rest-client.js';
import type { ChannelEndWatch } from '../legs/channel-watch.js';
import type { SoundRest } from '../legs/channel-sound.js';
import type { Dialer } from '../legs/dialer.js';
import type { PendingDials } from '../legs/pending-dials.js';
import type { TransferConfig } from '../config.js';
import type { Logger } from '../logger.js';
import type { StepJournal } from './journal.js';
import type { CallRegistry } from '../registry/call-registry.js';
import type { DestinationPolicy } from './policy.js';
import type { ProgressResult } from './progress.js';
import type { ReferOutRest } from './refer-out.js';

export type { TransferKind, TransferResult } from './machine.js';

export type TransferRest = Pick<
  AriRestClient,
  | 'transferProgress'
  | 'addChannel'
  | 'removeChannel'
  | 'hangup'
  | 'destroyBridge'
  | 'startRinging'
  | 'stopRinging'
  | 'startMoh'
  | 'stopMoh'
  | 'setChannelVariable'
  | 'createBridge'
  | 'getChannel'
  | 'getChannelVariable'
>;

export interface TransferDeps {
  rest: TransferRest;
  /** Music and ringback, in order per channel with the service's other users of them. */
  sound: SoundRest;
  registry: CallRegistry;
  dialer: Pick<Dialer, 'dial' | 'adopt'>;
  watch: ChannelEndWatch;
  policy: Pick<DestinationPolicy, 'evaluate'>;
  pendingDials: PendingDials;
  transfer: TransferConfig;
  mohClass: string;
  /** REFER out's requests (refer-out.ts); without it no call is sent back to its carrier. */
  referOut?: ReferOutRest;
}

export interface FlowContext {
  transferId: string;
  /** The transferer's channel: the one the REFER arrived on. */
  sourceId: string;
  deps: TransferDeps;
  /** Plain diagnostics. */
  log: Logger;
  /** The transfer's steps: logged and told to every observer. */
  journal: StepJournal;
  progress(state: TransferProgressState): Promise<ProgressResult>;
  /**
   * Resolves true once Asterisk has echoed `state` for this transfer (a
   * ChannelTransfer with that state: it has sent the NOTIFY), false after
   * `ms`. Ask before sending the progress: the echo can beat the REST answer.
   */
  echoOf(state: TransferProgressState, ms: number): Promise<boolean>;
  /** Bridges this transfer rearranges: the router leaves them alone meanwhile. */
  claimBridges(ids: string[]): void;
  /**
   * Makes this transfer the one rearranging these bridges. Resolves with
   * the first bridge another transfer in flight already rearranges (then
   * nothing is taken), or undefined.
   */
  ownBridges(ids: string[]): string | undefined;
  /** Resolves if the transfer must give up (shutdown grace over). */
  aborted: Promise<void>;
  /** From the API: resolves with the command sent to this transfer (complete, cancel); the same promise until then. */
  command(): Promise<TransferCommand>;
  /** Told each state the transfer enters. */
  stateChanged(state: TransferState): void;
}

export interface FlowOutcome {
  result: TransferResult;
  reason?: string;
}

/**
 * Watches the transferees from now on. The plan was made from a registry
 * read taken while 100 Trying was on its way: a hangup applied since then
 * is found in the registry, anything later reaches the watch.
 */
export async function watchTransferees(ctx: FlowContext, ids: string[]): Promise<AllEnded> {
  const watching = ctx.deps.watch.allEnded(ids);
  for (const id of ids) {
    const record = await ctx.deps.registry.store.getChannel(id);
    if (!record || record.hangingUp) watching.end(id);
  }
  return watching;
}
