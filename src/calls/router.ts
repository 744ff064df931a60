// Built-in call routing (ROUTING=dial): a call entering the application
// that we did not place rings while we dial the extension it asked for
// (the same dial template as transfers); when the callee answers, both are
// answered into a new bridge. A two-party call whose party hangs up is
// ended for the other party too.
//
// The caller is answered only once the callee answers, so that a phone
// transferring during its consultation call sees that call still ringing
// (semi-attended transfer), as it would behind any PBX. And only once both
// are in their bridge: a phone may REFER the instant its call is answered,
// and the transfer must then find the call connected.
import { randomUUID } from 'node:crypto';
import { isAriError } from '../ari/errors.js';
import type { AriEvent, Bridge, Channel } from '../ari/models.js';
import type { AriRestClient } from '../ari/rest-client.js';
import { callerIdOf } from '../legs/caller-id.js';
import { checkDestination } from '../destination-syntax.js';
import { INTERNODE_ARG, transferOfInternodeExten } from '../legs/internode.js';
import { OWN_LEG_ARG, type DialAttempt, type DialFailure, type Dialer } from '../legs/dialer.js';
import type { PendingDials } from '../legs/pending-dials.js';
import type { Logger } from '../logger.js';
import type { CallRegistry } from '../registry/call-registry.js';

export type RouterRest = Pick<
  AriRestClient,
  'answer' | 'hangup' | 'createBridge' | 'getBridge' | 'addChannel' | 'destroyBridge' | 'startRinging' | 'stopRinging'
>;

export interface RouterDeps {
  rest: RouterRest;
  registry: CallRegistry;
  dialer: Pick<Dialer, 'dial' | 'isOwnLeg'>;
  /** Bridges a transfer is rearranging are left alone until it is over. */
  transfers: { isClaimed(bridgeId: string): boolean };
  /** false for ROUTING=none: another application routes the calls. */
  routeCalls: boolean;
  /** Our Stasis application: with subscribeAll we also see other applications' calls. */
  app: string;
  timeoutMs: number;
  logger: Logger;
}

// ARI's hangup `reason` for each way a dial can fail, so the caller hears
// the matching cause (busy, no answer, ...).
const HANGUP_REASON: Record<DialFailure, string> = {
  busy: 'busy',
  rejected: 'rejected',
  'no-answer': 'no_answer',
  unreachable: 'unallocated',
  congestion: 'congestion',
  cancelled: 'normal',
  error: 'failure',
};

/** The name of every bridge the router creates: how a restarted service knows them again. */
const ROUTED_CALL = 'routed-call';

export class CallRouter implements PendingDials {
  /** Callers still waiting for their callee: caller id → the ringing leg. */
  private readonly dialing = new Map<string, DialAttempt>();
  /** Bridges this router created, whose two-party calls it ends. */
  private readonly bridges = new Set<string>();
  private readonly log: Logger;

  constructor(private readonly deps: RouterDeps) {
    this.log = deps.logger.child({ component: 'router' });
  }

  ringingLegOf(channelId: string): string | undefined {
    return this.dialing.get(channelId)?.channelId;
  }

  takeOver(channelId: string): DialAttempt | undefined {
    const attempt = this.dialing.get(channelId);
    this.dialing.delete(channelId);
    if (attempt) this.log.info({ callerChannelId: channelId, legChannelId: attempt.channelId }, 'ringing call handed to a transfer');
    return attempt;
  }

  /**
   * After a (re)connect, with Asterisk's bridges: the two-party calls this
   * router connected, also those a previous process of the service did
   * (killed or restarted meanwhile), are still its to end.
   */
  adoptBridges(bridges: readonly Bridge[]): void {
    for (const b of bridges) if (b.name === ROUTED_CALL) this.bridges.add(b.id);
  }

  /** Feed every ARI event, in order, after the registry has applied it. */
  async onEvent(event: AriEvent, bridgeBefore: string | undefined): Promise<void> {
    switch (event.type) {
      case 'StasisStart':
        this.onStasisStart(event.channel, event.args);
        return;
      case 'ChannelHangupRequest':
      case 'StasisEnd':
        await this.onChannelEnding(event.channel.id, bridgeBefore);
        return;
      case 'BridgeDestroyed':
        this.bridges.delete(event.bridge.id);
        return;
      default:
        return;
    }
  }

  /** After a transfer, or a party's hangup: a bridge left with one party is a call that is over. */
  async reconcile(bridgeId: string): Promise<void> {
    if (!this.bridges.has(bridgeId) || this.deps.transfers.isClaimed(bridgeId)) return;
    const bridge = await this.deps.registry.store.getBridge(bridgeId);
    if (!bridge) return;
    if ((await this.liveParties(bridge.channelIds)).length >= 2) return;
    // Not awaited: the event queue must not wait on REST round trips.
    void this.endIfOver(bridgeId).catch((err: unknown) => this.log.error({ err, bridgeId }, 'could not end the call'));
  }

  /**
   * The registry said one party is left; Asterisk decides. Our own moves are
   * often answered before their ChannelEnteredBridge arrives, so a party a
   * transfer has just added may be in the bridge yet unknown to the registry.
   */
  private async endIfOver(bridgeId: string): Promise<void> {
    let members: string[];
    try {
      members = (await this.deps.rest.getBridge(bridgeId)).channels;
    } catch (err) {
      if (isAriError(err, 404)) return; // already gone: its BridgeDestroyed does the rest
      throw err;
    }
    if (this.deps.transfers.isClaimed(bridgeId)) return;
    const live = await this.liveParties(members);
    if (live.length >= 2) return;
    // Whoever takes the bridge out of the set tears the call down, once.
    if (!this.bridges.delete(bridgeId)) return;
    this.log.info({ bridgeId, remaining: live }, 'call over: hanging up the last party and deleting the bridge');
    await Promise.all([...live.map((id) => this.hangUp(id, 'normal')), this.destroyBridge(bridgeId)]);
  }

  /** Channels not hanging up; one Asterisk lists but the registry does not know yet counts as live. */
  private async liveParties(channelIds: readonly string[]): Promise<string[]> {
    const live: string[] = [];
    for (const id of channelIds) {
      const c = await this.deps.registry.store.getChannel(id);
      if (!c?.hangingUp) live.push(id);
    }
    return live;
  }

  private onStasisStart(channel: Channel, args: string[]): void {
    if (this.deps.dialer.isOwnLeg(channel.id)) return;
    if (args[0] === OWN_LEG_ARG) {
      // A leg placed before a restart: nobody waits for it any more.
      this.log.warn({ channelId: channel.id }, 'hanging up a leg this service placed before it restarted');
      void this.hangUp(channel.id, 'normal');
      return;
    }
    // From another node to join a transfer's calls: the transfer side connects it (transfer/internode-join.ts).
    // Any other call from another node (a blind transfer's destination here) is routed as a phone's.
    if (args[0] === INTERNODE_ARG && transferOfInternodeExten(channel.dialplan?.exten)) return;
    if (!this.deps.routeCalls) return;
    // Stasis(app,args...): a call that entered another application is not ours to route.
    const enteredApp = channel.dialplan?.app_data?.split(',')[0];
    if (channel.dialplan?.app_name === 'Stasis' && enteredApp !== this.deps.app) return;
    void this.route(channel).catch((err: unknown) => this.log.error({ err, channelId: channel.id }, 'routing failed'));
  }

  private async route(caller: Channel): Promise<void> {
    const exten = caller.dialplan?.exten ?? '';
    const log = this.log.child({ callerChannelId: caller.id, exten });
    const valid = checkDestination(exten);
    if (!valid.allowed) {
      log.warn({ detail: valid.detail }, 'call to an extension that cannot be dialled; hanging up');
      await this.hangUp(caller.id, 'unallocated');
      return;
    }
    const record = await this.deps.registry.store.getChannel(caller.id);
    const attempt = this.deps.dialer.dial({
      exten,
      purpose: 'route',
      callerId: callerIdOf(record),
      variables: undefined,
      partyNumber: exten,
      timeoutMs: this.deps.timeoutMs,
      originator: caller.id,
    });
    this.dialing.set(caller.id, attempt);
    log.info({ legChannelId: attempt.channelId, dialString: attempt.endpoint }, 'routing the call');
    await this.deps.rest.startRinging(caller.id).catch((err: unknown) => log.warn({ err }, 'could not send ringing to the caller'));

    const outcome = await attempt.outcome;
    // Taken over by a transfer, or the caller hung up: not ours any more.
    if (this.dialing.get(caller.id) !== attempt) return;
    this.dialing.delete(caller.id);
    if (!outcome.answered) {
      log.info({ failure: outcome.failure, cause: outcome.cause }, 'callee not reached; hanging up the caller');
      await this.hangUp(caller.id, HANGUP_REASON[outcome.failure]);
      return;
    }
    await this.connect(caller.id, attempt.channelId, log);
  }

  private async connect(callerId: string, calleeId: string, log: Logger): Promise<void> {
    const bridgeId = `call-${randomUUID()}`;
    this.bridges.add(bridgeId);
    try {
      await Promise.all([
        // Ringback played in-band (inband_progress=yes) only stops when told.
        this.deps.rest.stopRinging(callerId).catch((err: unknown) => log.debug({ err }, 'ringing already stopped')),
        this.deps.rest.createBridge({ bridgeId, type: 'mixing', name: ROUTED_CALL }),
      ]);
      // Without inhibiting it, Asterisk tells each phone the other channel's
      // caller id at the join: the callee's leg carries the caller's, so the
      // caller would be told it talks to itself.
      await this.deps.rest.addChannel(bridgeId, [callerId, calleeId], { inhibitConnectedLineUpdates: true });
      await this.deps.rest.answer(callerId);
      log.info({ bridgeId, calleeChannelId: calleeId }, 'call connected');
    } catch (err) {
      // A party that hung up meanwhile has had its call ended by reconcile already.
      if (!this.bridges.delete(bridgeId)) {
        log.info({ bridgeId, err }, 'a party hung up while the call was being connected');
        return;
      }
      log.error({ err, bridgeId }, 'could not connect the call; hanging up both parties');
      await Promise.all([this.hangUp(callerId, 'failure'), this.hangUp(calleeId, 'normal'), this.destroyBridge(bridgeId)]);
    }
  }

  private async onChannelEnding(channelId: string, bridgeId: string | undefined): Promise<void> {
    const attempt = this.dialing.get(channelId);
    if (attempt) {
      this.dialing.delete(channelId);
      void attempt.cancel('the caller hung up');
      return;
    }
    if (bridgeId) await this.reconcile(bridgeId);
  }

  private async hangUp(channelId: string, reason: string): Promise<void> {
    try {
      await this.deps.rest.hangup(channelId, reason);
    } catch (err) {
      if (!isAriError(err, 404)) this.log.warn({ err, channelId }, 'could not hang up');
    }
  }

  private async destroyBridge(bridgeId: string): Promise<void> {
    try {
      await this.deps.rest.destroyBridge(bridgeId);
    } catch (err) {
      if (!isAriError(err, 404)) this.log.warn({ err, bridgeId }, 'could not delete the bridge');
    }
  }
}
