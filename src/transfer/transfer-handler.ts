// Decides which ChannelTransfer events start a transfer and sees each
// transfer through to exactly one terminating transfer_progress (or a logged
// reason why none could be sent).
//
// Not every ChannelTransfer is a new REFER:
//  - with `state`: Asterisk's echo of our own transfer_progress;
//  - without `state`, for a source with a transfer in flight, or whose
//    channel already left: Asterisk's own 503 after the transferer hung up
//    before any progress (blind-noprogress trace).
import { randomUUID } from 'node:crypto';
import type { ChannelTransferEvent, TransferProgressState } from '../ari/models.js';
import type { AriRestClient } from '../ari/rest-client.js';
import type { Logger } from '../logger.js';
import type { CallRegistry } from '../registry/call-registry.js';
import { executeAttended, type ExecutorRest } from './attended-executor.js';
import { planAttended } from './attended-plan.js';
import { SIPFRAG_OF, sendProgress, type ProgressResult } from './progress.js';
import { gatherTopology } from './topology.js';

export type TransferKind = 'attended' | 'blind';
export type TransferResult = 'completed' | 'rejected' | 'failed' | 'abandoned';

export interface TransferSummary {
  transferId: string;
  kind: TransferKind;
  sourceChannelId: string;
  destination: string | undefined;
  result: TransferResult;
  reason: string | undefined;
  /** The sipfrag codes the phone was sent, as far as Asterisk accepted them. */
  sipfrags: number[];
  durationMs: number;
}

export interface TransferHandlerDeps {
  rest: ExecutorRest & Pick<AriRestClient, 'transferProgress'>;
  registry: CallRegistry;
  logger: Logger;
  onFinished?: (summary: TransferSummary) => void;
}

export class TransferHandler {
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly log: Logger;

  constructor(private readonly deps: TransferHandlerDeps) {
    this.log = deps.logger.child({ component: 'transfer' });
  }

  get activeCount(): number {
    return this.inFlight.size;
  }

  /** Resolves when every transfer in flight has finished. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight.values()]);
  }

  /**
   * Called in event order. Returns once the event is accepted or ignored;
   * the transfer itself goes on in the background.
   */
  async onChannelTransfer(event: ChannelTransferEvent): Promise<void> {
    const sourceId = event.referred_by.source_channel.id;
    const meta = { sourceChannelId: sourceId, destination: event.refer_to.requested_destination.destination };
    if (event.state !== undefined) {
      this.log.debug({ ...meta, state: event.state }, 'transfer progress echoed by Asterisk');
      return;
    }
    if (this.inFlight.has(sourceId)) {
      this.log.info(meta, 'ignored a second ChannelTransfer for a transfer already in flight on this channel');
      return;
    }
    if (await this.deps.registry.store.recentlyEnded(sourceId)) {
      this.log.info(meta, 'ignored a ChannelTransfer for a transferer channel that already left (Asterisk answered the phone itself)');
      return;
    }
    // Checked again: the registry read above yields to other events.
    if (this.inFlight.has(sourceId)) return;
    const run = this.run(event).finally(() => this.inFlight.delete(sourceId));
    this.inFlight.set(sourceId, run);
  }

  private async run(event: ChannelTransferEvent): Promise<void> {
    const started = performance.now();
    const transferId = randomUUID().slice(0, 8);
    const source = event.referred_by.source_channel;
    const kind: TransferKind = event.refer_to.requested_destination.protocol_id ? 'attended' : 'blind';
    const destination = event.refer_to.requested_destination.destination;
    const log = this.log.child({ transferId, kind, sourceChannelId: source.id, sourceCallId: source.protocol_id || undefined });
    const sipfrags: number[] = [];
    const progress = async (state: TransferProgressState): Promise<ProgressResult> => {
      const result = await sendProgress(this.deps.rest, log, source.id, state);
      if (result === 'sent') recordSipfrag(sipfrags, state);
      return result;
    };
    log.info({ destination, replaces: event.refer_to.requested_destination.protocol_id }, 'transfer requested');

    let outcome: { result: TransferResult; reason?: string };
    try {
      outcome = kind === 'attended' ? await this.attended(event, log, progress) : await this.unsupported(progress);
    } catch (err) {
      // A bug, not an ARI failure: still never leave the phone waiting.
      log.error({ err }, 'transfer crashed');
      await progress('channel_unavailable');
      outcome = { result: 'failed', reason: 'internal error' };
    }

    const summary: TransferSummary = {
      transferId,
      kind,
      sourceChannelId: source.id,
      destination,
      result: outcome.result,
      reason: outcome.reason,
      sipfrags,
      durationMs: Math.round((performance.now() - started) * 10) / 10,
    };
    log.info({ summary }, `transfer ${outcome.result}`);
    this.deps.onFinished?.(summary);
  }

  private async attended(
    event: ChannelTransferEvent,
    log: Logger,
    progress: (state: TransferProgressState) => Promise<ProgressResult>,
  ): Promise<{ result: TransferResult; reason?: string }> {
    // The phone hears nothing until we speak: 100 Trying first, while we plan.
    const [trying, topology] = await Promise.all([progress('channel_progress'), gatherTopology(event, this.deps.registry)]);
    if (trying === 'channel-gone') return { result: 'abandoned', reason: 'the transferer hung up before the transfer started' };

    const plan = planAttended(event, topology);
    if (!plan.ok) {
      log.warn({ reason: plan.reason, detail: plan.detail }, 'attended transfer rejected');
      await progress('channel_unavailable');
      return { result: 'rejected', reason: plan.detail };
    }
    log.info(
      {
        replacedChannelId: plan.replacedId,
        resolvedBy: plan.resolvedBy,
        transferees: plan.transfereeIds,
        targets: plan.targetIds,
        targetBridgeId: plan.targetBridgeId,
      },
      'attended transfer planned',
    );

    const executed = await executeAttended(plan, { rest: this.deps.rest, registry: this.deps.registry, log, progress });
    if (!executed.ok) {
      await progress('channel_unavailable');
      const undo = executed.undone ? 'undone' : 'NOT fully undone';
      return { result: 'failed', reason: `${executed.failedStep} failed (${describe(executed.error)}); ${undo}` };
    }
    if (executed.answered === 'channel-gone') return { result: 'completed', reason: 'transferer hung up before the 200 sipfrag' };
    return { result: 'completed' };
  }

  // Blind transfers (no Replaces) are not handled yet: answer the phone at
  // once rather than let its REFER subscription run for 600 s.
  private async unsupported(
    progress: (state: TransferProgressState) => Promise<ProgressResult>,
  ): Promise<{ result: TransferResult; reason: string }> {
    await progress('channel_unavailable');
    return { result: 'rejected', reason: 'blind transfers are not supported by this version' };
  }
}

// Mirrors what the phone receives: Asterisk prepends 100 Trying to a first
// terminating state on its own.
function recordSipfrag(sipfrags: number[], state: TransferProgressState): void {
  const code = SIPFRAG_OF[state];
  if (sipfrags.length > 0 && sipfrags[sipfrags.length - 1]! >= 200) return;
  if (sipfrags.length === 0 && code >= 200) sipfrags.push(100);
  sipfrags.push(code);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
