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
import type { Bridge, Channel, ChannelTransferEvent, TransferProgressState } from '../ari/models.js';
import type { DialAttempt } from '../legs/dialer.js';
import type { Logger } from '../logger.js';
import type { FlowContext, FlowOutcome, TransferDeps, TransferKind, TransferResult } from './flow.js';
import { kindOf, next, noEffects, TransferState, type Transfer, type TransferCommand } from './machine.js';
import { planApiTransfer, type ApiRefusal, type ApiTransferRequest } from './api-plan.js';
import type { TopologySnapshot } from './attended-plan.js';
import { gatherAround } from './topology.js';
import { ChannelMarks } from './marks.js';
import { LEG_MARK, legPlanOf, planRecovery } from './recovery.js';
import { runTransfer } from './runner.js';
import { StepJournal } from './journal.js';
import { notifyAll, type TransferObserver, type TransferSummary } from './observer.js';
import { SIPFRAG_OF, sendProgress, type ProgressResult } from './progress.js';

export type { TransferKind, TransferResult, TransferSummary };

export interface TransferHandlerDeps extends TransferDeps {
  logger: Logger;
  observers: TransferObserver[];
}

/** How a transfer's run begins: a new REFER, or one recovered from Asterisk after a restart. */
interface TransferStart {
  transferId: string;
  kind: TransferKind;
  sourceId: string;
  sourceCallId: string | undefined;
  destination: string | undefined;
  from: Transfer;
  /** Recovered: its leg, followed again. */
  leg?: DialAttempt;
  /** A new REFER: what it asked for, logged as the first step. */
  requested?: { destination: string | undefined; replaces: string | undefined };
  claim?: string[];
  /** From the API: no REFER (so no sipfrag), the registry read it was planned from, and its command inbox. */
  api?: { topology: TopologySnapshot; transfer: ApiTransfer };
}

/** A transfer started through the API, while it runs: its state, and the one command it may be sent. */
interface ApiTransfer {
  sourceId: string;
  kind: TransferKind;
  state: TransferState;
  command: Promise<TransferCommand>;
  send?: (command: TransferCommand) => void;
}

/** Which command each state of an API transfer takes. */
const ACCEPTS: Partial<Record<TransferState, readonly TransferCommand[]>> = {
  [TransferState.Consulting]: ['cancel'],
  [TransferState.Consulted]: ['complete', 'cancel'],
};


export class TransferHandler {
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Transfer id → its current state, while in flight. */
  private readonly states = new Map<string, TransferState>();
  /** Per source channel: gives up the transfer in flight (shutdown). */
  private readonly aborts = new Map<string, () => void>();
  /** Per source channel: transfers waiting for Asterisk's echo of a progress state. */
  private readonly echoWaiters = new Map<string, Set<{ state: string; echoed(): void }>>();
  /** Bridge id → number of transfers in flight rearranging it. */
  private readonly claimed = new Map<string, number>();
  /** Bridge id → the transfer (by source channel) rearranging it: one at a time. */
  private readonly owners = new Map<string, string>();
  private readonly log: Logger;
  private readonly marks: ChannelMarks;
  /** Transfer id → the API transfer in flight. */
  private readonly apiTransfers = new Map<string, ApiTransfer>();
  private draining = false;

  constructor(private readonly deps: TransferHandlerDeps) {
    this.log = deps.logger.child({ component: 'transfer' });
    this.marks = new ChannelMarks(deps.rest, this.log);
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
    await Promise.all(stuck.map((id) => sendProgress(this.deps.rest, this.untold({ sourceChannelId: id }), id, 'channel_unavailable')));
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
      await sendProgress(this.deps.rest, this.untold(meta), sourceId, 'channel_unavailable');
      return;
    }
    const dest = event.refer_to.requested_destination;
    this.start({
      transferId: randomUUID().slice(0, 8),
      kind: kindOf(event),
      sourceId,
      sourceCallId: event.referred_by.source_channel.protocol_id || undefined,
      destination: dest.destination,
      from: { state: TransferState.Requested, event },
      requested: { destination: dest.destination, replaces: dest.protocol_id },
      claim: [event.referred_by.bridge?.id, event.refer_to.bridge?.id].filter((id): id is string => id !== undefined),
    });
  }

  /**
   * POST /transfers: the channel named is the transferer. Resolves once the
   * transfer is under way (its id) or refused; it goes on in the background.
   */
  async startFromApi(req: ApiTransferRequest): Promise<{ transferId: string } | ApiRefusal> {
    if (this.draining) return { status: 503, code: 'ERR_SHUTTING_DOWN', message: 'the service is shutting down' };
    const busy = (): ApiRefusal | undefined =>
      this.inFlight.has(req.channelId) ? { status: 409, code: 'ERR_TRANSFER_IN_PROGRESS', message: `channel ${req.channelId} already has a transfer in flight` } : undefined;
    const first = busy();
    if (first) return first;
    const transferId = randomUUID().slice(0, 8);
    const topology = await gatherAround(req.channelId, this.deps.registry);
    // Checked again: the registry read above yields to other events.
    const again = busy();
    if (again) return again;
    const plan = planApiTransfer(req, transferId, topology);
    if (!plan.ok) return { status: plan.status, code: plan.code, message: plan.message };
    const taken = plan.bridgeIds.find((id) => this.owners.has(id));
    if (taken !== undefined) return { status: 409, code: 'ERR_BRIDGE_BUSY', message: `another transfer is rearranging bridge ${taken}` };
    let send!: (command: TransferCommand) => void;
    const command = new Promise<TransferCommand>((resolve) => (send = resolve));
    const transfer: ApiTransfer = { sourceId: req.channelId, kind: req.kind, state: plan.from.state, command, send };
    this.apiTransfers.set(transferId, transfer);
    this.start({
      transferId,
      kind: req.kind,
      sourceId: req.channelId,
      sourceCallId: topology.channels.get(req.channelId)?.callId,
      destination: req.destination,
      from: plan.from,
      requested: { destination: req.destination, replaces: undefined },
      claim: plan.bridgeIds,
      api: { topology, transfer },
    });
    return { transferId };
  }

  /** POST /transfers/{id}/complete or /cancel. */
  command(transferId: string, command: TransferCommand): { state: TransferState } | ApiRefusal {
    const t = this.apiTransfers.get(transferId);
    if (!t) return { status: 404, code: 'ERR_TRANSFER_NOT_FOUND', message: `no transfer ${transferId} in flight that was started through the API` };
    if (t.kind === 'blind') return { status: 409, code: 'ERR_NOT_ATTENDED', message: `transfer ${transferId} is blind: there is nothing to ${command}` };
    if (!t.send || !(ACCEPTS[t.state] ?? []).includes(command)) {
      const why = t.send ? `it is ${t.state}` : 'a command was already sent';
      return { status: 409, code: 'ERR_WRONG_STATE', message: `transfer ${transferId} cannot ${command} now: ${why}` };
    }
    t.send(command);
    t.send = undefined;
    this.log.info({ transferId, command, state: t.state }, `API: ${command} requested`);
    return { state: t.state };
  }

  /** The state of a transfer in flight (any origin), by id. */
  stateOf(transferId: string): TransferState | undefined {
    return this.states.get(transferId);
  }

  /**
   * On every (re)connect, with Asterisk's channels and bridges: transfers
   * this process is not handling but Asterisk shows marks of (the service
   * was restarted, or killed, in the middle of them) go on from where they
   * were. Call in event order, after the registry's resync.
   */
  recover(channels: readonly Channel[], bridges: readonly Bridge[]): void {
    const present = new Set(channels.map((c) => c.id));
    for (const r of planRecovery(channels, bridges, (sourceId) => this.inFlight.has(sourceId))) {
      if (r.kind === 'refer-pending') {
        this.log.warn({ transferId: r.transferId, sourceChannelId: r.sourceId }, 'recovering a transfer left pending by a restart: 503');
        this.holdWasOurs(r.transferees);
        this.start({
          transferId: r.transferId,
          kind: 'blind',
          sourceId: r.sourceId,
          sourceCallId: undefined,
          destination: undefined,
          from: {
            state: TransferState.Unwinding,
            leg: { sourceId: r.sourceId, sourceBridgeId: '', transfereeIds: r.transferees, busyIsDecline: false },
            cancel: undefined,
            ending: { ...noEffects(), result: 'failed', reason: 'the service restarted before the transfer was carried out', sipfrag: 'channel_unavailable' },
          },
        });
        continue;
      }
      if (r.kind === 'referring-out') {
        this.log.warn({ transferId: r.transferId, sourceChannelId: r.sourceId, channelId: r.leg.transfereeIds[0] }, 'recovering a transfer interrupted by a restart');
        this.start({
          transferId: r.transferId,
          kind: 'blind',
          sourceId: r.sourceId,
          sourceCallId: undefined,
          destination: r.leg.destination,
          from: { state: TransferState.ReferringOut, leg: r.leg, target: r.target, sent: true },
          claim: [r.leg.sourceBridgeId],
        });
        continue;
      }
      if (r.kind === 'moves-interrupted') {
        this.log.warn({ transferId: r.transferId, sourceChannelId: r.sourceId, movesLeft: r.plan.moves.length }, 'recovering a transfer interrupted by a restart');
        const moving: Transfer = { state: TransferState.Moving, plan: r.plan };
        this.start({
          transferId: r.transferId,
          kind: 'attended',
          sourceId: r.sourceId,
          sourceCallId: undefined,
          destination: undefined,
          // Every move done: straight to the 200 and the hang-ups.
          from: r.plan.moves.length > 0 ? moving : next(moving, { type: 'moved' }).transfer,
          claim: [r.plan.sourceBridgeId, r.plan.targetBridgeId],
        });
        continue;
      }
      const plan = legPlanOf(r.mark);
      if (r.kind === 'leg-joined' && !present.has(r.mark.source)) {
        // Done but for the marks: the transferer, and with it the REFER, is gone.
        this.marks.write(r.leg.id, LEG_MARK, '');
        continue;
      }
      this.holdWasOurs(plan.transfereeIds);
      const leg = this.deps.dialer.adopt(r.leg, r.mark.deadline - Date.now());
      this.log.warn({ transferId: r.transferId, sourceChannelId: r.mark.source, legChannelId: r.leg.id, recovery: r.kind }, 'recovering a transfer interrupted by a restart');
      // Where the leg is, the transfer is: ringing, answered, or joined (only the 200 and the hang-ups left).
      const joining: Transfer = { state: TransferState.Joining, leg: plan };
      const from: Transfer =
        r.kind === 'leg-ringing' ? { state: TransferState.Dialing, leg: plan } : r.kind === 'leg-answered' ? joining : next(joining, { type: 'joined' }).transfer;
      this.start({
        transferId: r.transferId,
        kind: plan.replacedId !== undefined ? 'attended' : 'blind',
        sourceId: r.mark.source,
        sourceCallId: undefined,
        destination: undefined,
        from,
        leg,
        claim: [plan.sourceBridgeId],
      });
    }
  }

  private start(start: TransferStart): void {
    let abort!: () => void;
    const aborted = new Promise<void>((resolve) => (abort = resolve));
    this.aborts.set(start.sourceId, abort);
    this.states.set(start.transferId, start.from.state);
    const run = this.run(start, aborted).finally(() => {
      this.inFlight.delete(start.sourceId);
      this.aborts.delete(start.sourceId);
      this.states.delete(start.transferId);
      this.apiTransfers.delete(start.transferId);
    });
    this.inFlight.set(start.sourceId, run);
  }

  private async run(start: TransferStart, aborted: Promise<void>): Promise<void> {
    const started = performance.now();
    const { transferId, kind, sourceId, sourceCallId, destination } = start;
    const observers = this.deps.observers;
    const log = this.log.child({ transferId, kind, sourceChannelId: sourceId, sourceCallId });
    const journal = new StepJournal(log, (s) => notifyAll(observers, this.log, 'step', { ...s, transferId, at: new Date().toISOString() }));
    notifyAll(observers, this.log, 'started', {
      transferId,
      kind,
      origin: start.api ? 'api' : 'refer',
      sourceChannelId: sourceId,
      sourceCallId,
      destination,
      startedAt: new Date().toISOString(),
    });
    const sipfrags: number[] = [];
    const bridgeIds: string[] = [];
    // Two states in flight over HTTP could overtake each other: each waits for the one before.
    let lastProgress: Promise<unknown> = Promise.resolve();
    const ctx: FlowContext = {
      transferId,
      sourceId,
      deps: this.deps,
      log,
      journal,
      aborted,
      progress: (state: TransferProgressState): Promise<ProgressResult> => {
        // No REFER, no NOTIFY: the API's caller reads the outcome instead.
        if (start.api) return Promise.resolve('no-refer');
        const sending = lastProgress.then(async () => {
          const result = await sendProgress(this.deps.rest, journal, sourceId, state);
          if (result === 'sent') recordSipfrag(sipfrags, state);
          return result;
        });
        lastProgress = sending;
        return sending;
      },
      echoOf: (state, ms) => (start.api ? Promise.resolve(true) : this.echoOf(sourceId, state, ms)),
      command: () => start.api?.transfer.command ?? new Promise<TransferCommand>(() => undefined),
      stateChanged: (state) => {
        this.states.set(transferId, state);
        if (start.api) start.api.transfer.state = state;
      },
      ownBridges: (ids) => {
        const taken = ids.find((id) => (this.owners.get(id) ?? sourceId) !== sourceId);
        if (taken !== undefined) return taken;
        for (const id of ids) this.owners.set(id, sourceId);
        ctx.claimBridges(ids);
        return undefined;
      },
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
    ctx.claimBridges(start.claim ?? []);
    if (start.requested) journal.info('requested', { ...start.requested }, 'transfer requested');

    let outcome: FlowOutcome;
    try {
      outcome = await runTransfer(ctx, start.from, start.leg, start.api?.topology);
    } catch (err) {
      // A bug, not an ARI failure: still never leave the phone waiting.
      log.error({ err }, 'transfer crashed');
      await ctx.progress('channel_unavailable');
      outcome = { result: 'failed', reason: 'internal error' };
    } finally {
      for (const [id, owner] of [...this.owners]) if (owner === sourceId) this.owners.delete(id);
      for (const id of bridgeIds) {
        const n = (this.claimed.get(id) ?? 1) - 1;
        if (n > 0) this.claimed.set(id, n);
        else this.claimed.delete(id);
      }
    }

    const summary: TransferSummary = {
      transferId,
      kind,
      sourceChannelId: sourceId,
      destination,
      result: outcome.result,
      reason: outcome.reason,
      sipfrags,
      bridgeIds,
      durationMs: Math.round((performance.now() - started) * 10) / 10,
    };
    log.info({ summary }, `transfer ${outcome.result}`);
    notifyAll(observers, this.log, 'finished', summary);
  }

  /**
   * With TRANSFER_HOLD_MODE=moh the transferees of a recovered leg may hear
   * music the previous process started (the registry that said so died with
   * it): marked ours again, so that the transfer stops it. Stopping music
   * that never started does nothing.
   */
  private holdWasOurs(transfereeIds: string[]): void {
    if (this.deps.transfer.holdMode !== 'moh') return;
    for (const id of transfereeIds) {
      void this.deps.registry.store.patchChannel(id, { mohByService: true }).catch((err: unknown) => this.log.warn({ err, channelId: id }, 'could not mark the music as ours'));
    }
  }

  /** Steps of no transfer (a REFER refused while shutting down): logged, told to no observer. */
  private untold(bindings: Record<string, unknown>): StepJournal {
    return new StepJournal(this.log.child(bindings), () => undefined);
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
