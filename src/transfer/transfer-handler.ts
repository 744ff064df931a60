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
import type { Logger } from '../logger.js';
import type { FlowContext, FlowOutcome, TransferDeps, TransferKind, TransferResult } from './flow.js';
import { kindOf } from './machine.js';
import { runTransfer } from './runner.js';
import { notifyAll, stepReportingLogger, type TransferObserver, type TransferSummary } from './observer.js';
import { SIPFRAG_OF, sendProgress, type ProgressResult } from './progress.js';

export type { TransferKind, TransferResult, TransferSummary };

export interface TransferHandlerDeps extends TransferDeps {
  logger: Logger;
  observers: TransferObserver[];
}

export class TransferHandler {
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Per source channel: gives up the transfer in flight (shutdown). */
  private readonly aborts = new Map<string, () => void>();
  /** Per source channel: transfers waiting for Asterisk's echo of a progress state. */
  private readonly echoWaiters = new Map<string, Set<{ state: string; echoed(): void }>>();
  /** Bridge id → number of transfers in flight rearranging it. */
  private readonly claimed = new Map<string, number>();
  private readonly log: Logger;
  private draining = false;

  constructor(private readonly deps: TransferHandlerDeps) {
    this.log = deps.logger.child({ component: 'transfer' });
  }

  get activeCount(): number {
    return this.inFlight.size;
  }

  /** A transfer in flight is rearranging this bridge: leave it alone. */
  isClaimed(bridgeId: string): boolean {
    return this.claimed.has(bridgeId);
  }

  /** Resolves when every transfer in flight has finished. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight.values()]);
  }

  /**
   * Shutting down: new REFERs are refused at once; those in flight get
   * `graceMs` to finish. Resolves with how many were still running then;
   * their phones are told 503 rather than left waiting.
   */
  async drain(graceMs: number): Promise<number> {
    this.draining = true;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => (timer = setTimeout(() => resolve('expired'), graceMs)));
    const outcome = await Promise.race([this.idle().then(() => 'idle' as const), expired]);
    clearTimeout(timer);
    if (outcome === 'idle') return 0;
    const left = [...this.inFlight.keys()];
    this.log.warn({ sourceChannelIds: left }, 'shutdown grace over: giving up unfinished transfers');
    // Each gives up cleanly (cancels its leg, stops ringback, says 503)...
    for (const id of left) this.aborts.get(id)?.();
    await Promise.race([this.idle(), new Promise((r) => setTimeout(r, 2000).unref())]);
    // ...and any that could not is still answered, so no REFER hangs.
    const stuck = [...this.inFlight.keys()];
    await Promise.all(stuck.map((id) => sendProgress(this.deps.rest, this.log.child({ sourceChannelId: id }), id, 'channel_unavailable')));
    return left.length;
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
      for (const waiter of this.echoWaiters.get(sourceId) ?? []) if (waiter.state === event.state) waiter.echoed();
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
    if (this.draining) {
      this.log.warn(meta, 'shutting down: REFER refused with 503');
      await sendProgress(this.deps.rest, this.log.child(meta), sourceId, 'channel_unavailable');
      return;
    }
    let abort!: () => void;
    const aborted = new Promise<void>((resolve) => (abort = resolve));
    this.aborts.set(sourceId, abort);
    const run = this.run(event, aborted).finally(() => {
      this.inFlight.delete(sourceId);
      this.aborts.delete(sourceId);
    });
    this.inFlight.set(sourceId, run);
  }

  private async run(event: ChannelTransferEvent, aborted: Promise<void>): Promise<void> {
    const started = performance.now();
    const transferId = randomUUID().slice(0, 8);
    const source = event.referred_by.source_channel;
    const dest = event.refer_to.requested_destination;
    const kind: TransferKind = kindOf(event);
    const sourceCallId = source.protocol_id || undefined;
    const observers = this.deps.observers;
    const log = stepReportingLogger(this.log.child({ transferId, kind, sourceChannelId: source.id, sourceCallId }), (s) =>
      notifyAll(observers, this.log, 'step', { ...s, transferId, at: new Date().toISOString() }),
    );
    notifyAll(observers, this.log, 'started', {
      transferId,
      kind,
      sourceChannelId: source.id,
      sourceCallId,
      destination: dest.destination,
      startedAt: new Date().toISOString(),
    });
    const sipfrags: number[] = [];
    const bridgeIds: string[] = [];
    const ctx: FlowContext = {
      event,
      aborted,
      deps: this.deps,
      log,
      progress: async (state: TransferProgressState): Promise<ProgressResult> => {
        const result = await sendProgress(this.deps.rest, log, source.id, state);
        if (result === 'sent') recordSipfrag(sipfrags, state);
        return result;
      },
      echoOf: (state, ms) => this.echoOf(source.id, state, ms),
      claimBridges: (ids) => {
        for (const id of ids) {
          if (bridgeIds.includes(id)) continue;
          bridgeIds.push(id);
          this.claimed.set(id, (this.claimed.get(id) ?? 0) + 1);
        }
      },
    };
    // Claimed before the first await: a hangup event processed meanwhile
    // must not make the router end the call this transfer is rearranging.
    ctx.claimBridges([event.referred_by.bridge?.id, event.refer_to.bridge?.id].filter((id): id is string => id !== undefined));
    log.info({ step: 'requested', destination: dest.destination, replaces: dest.protocol_id }, 'transfer requested');

    let outcome: FlowOutcome;
    try {
      outcome = await runTransfer(ctx);
    } catch (err) {
      // A bug, not an ARI failure: still never leave the phone waiting.
      log.error({ err }, 'transfer crashed');
      await ctx.progress('channel_unavailable');
      outcome = { result: 'failed', reason: 'internal error' };
    } finally {
      for (const id of bridgeIds) {
        const n = (this.claimed.get(id) ?? 1) - 1;
        if (n > 0) this.claimed.set(id, n);
        else this.claimed.delete(id);
      }
    }

    const summary: TransferSummary = {
      transferId,
      kind,
      sourceChannelId: source.id,
      destination: dest.destination,
      result: outcome.result,
      reason: outcome.reason,
      sipfrags,
      bridgeIds,
      durationMs: Math.round((performance.now() - started) * 10) / 10,
    };
    log.info({ summary }, `transfer ${outcome.result}`);
    notifyAll(observers, this.log, 'finished', summary);
  }

  private echoOf(sourceId: string, sent: TransferProgressState, ms: number): Promise<boolean> {
    // Asterisk echoes channel_unavailable as channel_declined.
    const state = sent === 'channel_unavailable' ? 'channel_declined' : sent;
    return new Promise((resolve) => {
      const waiters = this.echoWaiters.get(sourceId) ?? new Set();
      this.echoWaiters.set(sourceId, waiters);
      const done = (echoed: boolean) => {
        clearTimeout(timer);
        waiters.delete(waiter);
        if (waiters.size === 0 && this.echoWaiters.get(sourceId) === waiters) this.echoWaiters.delete(sourceId);
        resolve(echoed);
      };
      const waiter = { state, echoed: () => done(true) };
      const timer = setTimeout(() => done(false), ms).unref();
      waiters.add(waiter);
    });
  }
}

// Mirrors what the phone receives: Asterisk prepends 100 Trying to a first
// terminating state on its own, and ignores anything after a terminating one.
function recordSipfrag(sipfrags: number[], state: TransferProgressState): void {
  const code = SIPFRAG_OF[state];
  if (sipfrags.length > 0 && sipfrags[sipfrags.length - 1]! >= 200) return;
  if (sipfrags.length === 0 && code >= 200) sipfrags.push(100);
  sipfrags.push(code);
}
