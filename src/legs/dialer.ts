// Places new call legs and reports how each one ended up: answered, or why
// not. Used for blind-transfer targets and for routed calls alike.
//
// The id is chosen and remembered before the originate request, because
// the leg's StasisStart can arrive before the REST response does.
import { randomUUID } from 'node:crypto';
import { isAriError } from '../ari/errors.js';
import { withRetries } from '../ari/retry.js';
import type { AriEvent, Channel } from '../ari/models.js';
import type { AriRestClient } from '../ari/rest-client.js';
import type { Logger } from '../logger.js';

/**
 * On a leg we dial, the number of the party we dialled. The leg's caller id
 * is the caller's (what the callee's phone shows), and so is its connected
 * line: only this says who is at the other end of it. Kept on the channel,
 * so it survives a restart of the service.
 */
export const DIALLED_PARTY_VAR = 'ARI_TRANSFER_DIALLED';

/** First Stasis argument of every leg we originate: tells our legs from calls to route. */
export const OWN_LEG_ARG = 'ari-transfer-leg';

export type DialFailure = 'busy' | 'rejected' | 'no-answer' | 'unreachable' | 'congestion' | 'cancelled' | 'error';

export type DialOutcome =
  | { answered: true; channel: Channel }
  | { answered: false; failure: DialFailure; cause: number | undefined; detail: string };

export interface DialRequest {
  exten: string;
  /** The whole dial string, instead of the template with `exten` (a call to another node). */
  endpoint?: string;
  purpose: 'transfer' | 'route';
  /** "Name <number>"; without it the callee sees Anonymous. */
  callerId: string | undefined;
  variables: Record<string, string> | undefined;
  /** The number the called party is known by (connected-line.ts): kept on the leg as DIALLED_PARTY_VAR. */
  partyNumber?: string;
  timeoutMs: number;
  /** The channel on whose behalf we dial (linkedid, CDRs). */
  originator: string | undefined;
}

export interface DialAttempt {
  channelId: string;
  endpoint: string;
  /** Settles once the originate request was answered: true if Asterisk accepted it. */
  originated: Promise<boolean>;
  outcome: Promise<DialOutcome>;
  /** Hangs the leg up if it has not been answered; no-op otherwise. */
  cancel(detail: string): Promise<void>;
}

export type DialerRest = Pick<AriRestClient, 'originate' | 'hangup'>;

export interface DialerOptions {
  rest: DialerRest;
  app: string;
  /** Dial-string template with `{exten}`, e.g. `PJSIP/{exten}` or `PJSIP/{exten}@trunk`. */
  template: string;
  logger: Logger;
}

// Q.850 causes as Asterisk reports them in ChannelDestroyed.
const CAUSE_FAILURE: Record<number, DialFailure> = {
  17: 'busy',
  21: 'rejected',
  18: 'no-answer',
  19: 'no-answer',
  1: 'unreachable',
  3: 'unreachable',
  20: 'unreachable',
  27: 'unreachable',
  34: 'congestion',
  38: 'congestion',
  42: 'congestion',
};

export function failureOfCause(cause: number | undefined): DialFailure {
  return (cause !== undefined && CAUSE_FAILURE[cause]) || 'error';
}

interface Pending {
  settle(outcome: DialOutcome): void;
  settled: boolean;
  cancelled: boolean;
  /** Asterisk accepted the originate: the channel exists. */
  placed: boolean;
}

export class Dialer {
  private readonly pending = new Map<string, Pending>();
  /** Every leg we placed that still exists (also after it was answered). */
  private readonly own = new Set<string>();
  /** Legs given up unanswered (cancelled, timed out): hung up if they answer after all. */
  private readonly abandoned = new Set<string>();
  private readonly log: Logger;

  constructor(private readonly options: DialerOptions) {
    this.log = options.logger.child({ component: 'dialer' });
  }

  endpointFor(exten: string): string {
    return this.options.template.replaceAll('{exten}', exten);
  }

  /** A leg this service placed (never to be routed as a new call). */
  isOwnLeg(channelId: string): boolean {
    return this.own.has(channelId);
  }

  dial(req: DialRequest): DialAttempt {
    const channelId = `${req.purpose}-${randomUUID()}`;
    const endpoint = req.endpoint ?? this.endpointFor(req.exten);
    const log = this.log.child({ legChannelId: channelId, endpoint, purpose: req.purpose });
    const tracked = this.track(channelId, req.timeoutMs, log);
    const { entry } = tracked;

    log.info({ exten: req.exten, callerId: req.callerId }, 'dialling');
    const originated = this.options.rest
      .originate({
        channelId,
        endpoint,
        app: this.options.app,
        appArgs: `${OWN_LEG_ARG},${req.purpose}`,
        callerId: req.callerId,
        // Asterisk's own timer is only a backstop behind ours.
        timeoutSec: Math.ceil(req.timeoutMs / 1000) + 5,
        variables: req.partyNumber !== undefined ? { ...req.variables, [DIALLED_PARTY_VAR]: req.partyNumber } : req.variables,
        originator: req.originator,
      })
      .then(
        () => {
          entry.placed = true;
          return true;
        },
        (err: unknown) => {
          const status = isAriError(err) ? err.status : undefined;
          if (isAriError(err) && (err.kind !== 'http' || (err.status ?? 0) >= 500) && status !== 500) {
            // Timed out or lost: Asterisk may have placed the call all the
            // same. The id is ours, so make sure it does not ring on.
            void this.hangUp(channelId, log);
          } else {
            // Never placed: nothing to hang up later either (TRANSFER_TIMEOUT may have marked it abandoned).
            this.own.delete(channelId);
            this.abandoned.delete(channelId);
          }
          entry.settle({
            answered: false,
            // Asterisk answers 500 "Allocation failed" for an endpoint it cannot dial.
            failure: status === 500 || status === 400 ? 'unreachable' : 'error',
            cause: undefined,
            detail: err instanceof Error ? err.message : String(err),
          });
          return false;
        },
      );
    return { channelId, endpoint, originated, outcome: tracked.outcome, cancel: tracked.cancel };
  }

  /**
   * A leg this service placed before it restarted (its transfer recovered
   * from Asterisk): followed from now on as if just dialled, with what is
   * left of its time.
   */
  adopt(channel: Channel, timeoutMs: number): DialAttempt {
    const log = this.log.child({ legChannelId: channel.id, purpose: 'transfer' });
    const tracked = this.track(channel.id, Math.max(0, timeoutMs), log);
    tracked.entry.placed = true;
    log.info({ state: channel.state, timeoutMs }, 'leg placed before a restart: following it again');
    if (channel.state === 'Up') tracked.entry.settle({ answered: true, channel });
    return { channelId: channel.id, endpoint: channel.name, originated: Promise.resolve(true), outcome: tracked.outcome, cancel: tracked.cancel };
  }

  /** Follows a leg until it answers, fails, or its time is up (then it is hung up). */
  private track(channelId: string, timeoutMs: number, log: Logger) {
    let settle!: (o: DialOutcome) => void;
    const outcome = new Promise<DialOutcome>((resolve) => (settle = resolve));
    const entry: Pending = {
      settled: false,
      cancelled: false,
      placed: false,
      settle: (o) => {
        if (entry.settled) return;
        entry.settled = true;
        clearTimeout(timer);
        this.pending.delete(channelId);
        if (!o.answered && this.own.has(channelId)) this.abandoned.add(channelId);
        if (o.answered) log.info('leg answered');
        else log.info({ failure: o.failure, cause: o.cause, detail: o.detail }, 'leg not answered');
        settle(o);
      },
    };
    this.pending.set(channelId, entry);
    this.own.add(channelId);

    const timer = setTimeout(() => {
      void this.hangUp(channelId, log);
      entry.settle({ answered: false, failure: 'no-answer', cause: 19, detail: `no answer within ${timeoutMs} ms` });
    }, timeoutMs);

    const cancel = async (detail: string): Promise<void> => {
      if (entry.settled) return;
      entry.cancelled = true;
      entry.settle({ answered: false, failure: 'cancelled', cause: undefined, detail });
      await this.hangUp(channelId, log);
    };
    return { entry, outcome, cancel };
  }

  /** Feed every ARI event, in order. */
  onEvent(event: AriEvent): void {
    switch (event.type) {
      case 'StasisStart': {
        const entry = this.pending.get(event.channel.id);
        if (entry) entry.settle({ answered: true, channel: event.channel });
        else this.reapAbandoned(event.channel.id, 'answered');
        return;
      }
      case 'ChannelCreated':
      case 'ChannelStateChange':
        // An originate that timed out before Asterisk created the channel:
        // our hangup got 404, and the leg shows up (and rings) only now.
        this.reapAbandoned(event.channel.id, event.channel.state);
        return;
      case 'ChannelDestroyed': {
        this.own.delete(event.channel.id);
        this.abandoned.delete(event.channel.id);
        const entry = this.pending.get(event.channel.id);
        if (entry) {
          entry.settle({ answered: false, failure: failureOfCause(event.cause), cause: event.cause, detail: event.cause_txt });
        }
        return;
      }
      default:
        return;
    }
  }

  /** A leg we gave up on showed up after all: nobody wants this call now. */
  private reapAbandoned(channelId: string, state: string): void {
    if (!this.abandoned.delete(channelId)) return;
    this.log.warn({ legChannelId: channelId, state }, 'a leg given up on is still there; hanging it up');
    void this.hangUp(channelId, this.log);
  }

  /**
   * After a resync, with Asterisk's channels: what happened to our legs while
   * the events socket was down, their events lost. A leg no longer there
   * ended (ChannelDestroyed lost); a leg up and in Stasis answered
   * (StasisStart lost: Asterisk still sent it to a connection it did not
   * know was dead).
   */
  reconcile(channels: readonly Channel[]): void {
    const present = new Map(channels.map((c) => [c.id, c]));
    for (const [id, entry] of [...this.pending]) {
      const channel = present.get(id);
      if (channel?.state === 'Up' && channel.dialplan?.app_name === 'Stasis') {
        this.log.info({ legChannelId: id }, 'the leg answered while the events connection was down');
        entry.settle({ answered: true, channel });
      } else if (entry.placed && !channel) {
        entry.settle({ answered: false, failure: 'error', cause: undefined, detail: 'the leg ended while the events connection was down' });
      }
    }
    for (const id of [...this.own]) {
      if (!present.has(id) && !this.pending.has(id)) {
        this.own.delete(id);
        this.abandoned.delete(id);
      }
    }
  }

  private async hangUp(channelId: string, log: Logger): Promise<void> {
    try {
      await withRetries(() => this.options.rest.hangup(channelId, 'normal'));
    } catch (err) {
      if (!isAriError(err, 404)) log.warn({ err }, 'could not hang up the leg');
    }
  }
}
