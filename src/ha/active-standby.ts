// Active/standby for one Asterisk node (HA_MODE=active-standby): of the
// instances started for a node, the one holding the lease in Redis serves
// it (ARI takes one WebSocket per application); the others wait.
//
//   standby --acquired--> active --renewed--> active
//      ^ not acquired        |  lease lost / not renewed in time /
//      '-----'               |  Asterisk unreachable for a lease period
//                            v
//                         stepped-down (the process exits; restarted, it is a standby)
//
// An active instance that loses the lease exits rather than go back to
// standby in-process: timers and requests of its transfers in flight could
// still act on Asterisk beside the new active one. Exiting fences them (as
// Kubernetes controllers do on losing leader election); the new active one
// resumes those transfers from what Asterisk shows.
import type { Logger } from '../logger.js';
import type { RedisLease } from './lease.js';

export type Role = 'standby' | 'active' | 'stepped-down' | 'stopped';

export interface LeaseView {
  role: Role;
  now: number;
  /** While active: the lease is surely ours until then (the last renewal's send time + TTL). */
  validUntil: number;
  /** While active: since when Asterisk is unreachable, if it is. */
  asteriskDownSince: number | undefined;
  leaseMs: number;
}

export type LeaseDecision =
  | { do: 'acquire' }
  | { do: 'renew' }
  | { do: 'step-down'; reason: string; release: boolean }
  | { do: 'nothing' };

/** What one tick does: pure, so every rule is tested without Redis or timers. */
export function decideTick(v: LeaseView): LeaseDecision {
  if (v.role === 'standby') return { do: 'acquire' };
  if (v.role !== 'active') return { do: 'nothing' };
  // Past this point Redis may have let the lease go to another instance.
  if (v.now >= v.validUntil) return { do: 'step-down', reason: 'the lease could not be renewed in time', release: false };
  if (v.asteriskDownSince !== undefined && v.now - v.asteriskDownSince >= v.leaseMs) {
    return { do: 'step-down', reason: `Asterisk unreachable for ${v.now - v.asteriskDownSince} ms: letting the standby try`, release: true };
  }
  return { do: 'renew' };
}

export interface ActiveStandbyOptions {
  lease: RedisLease;
  /** Whether this instance reaches Asterisk (read on every tick while active). */
  asteriskConnected: () => boolean;
  /** Became the active instance: start serving. */
  onActive: () => void;
  /** No longer the active instance: stop at once (main.ts exits). */
  onSteppedDown: (reason: string) => void;
  logger: Logger;
  now?: () => number;
}

export class ActiveStandby {
  private current: Role = 'standby';
  private validUntil = 0;
  private asteriskDownSince: number | undefined;
  private activeSince: number | undefined;
  private lastRenewedAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private redisFailing = false;
  private readonly now: () => number;
  private readonly log: Logger;
  /** Set when this instance became active after another one (a failover). */
  tookOverFrom: string | undefined;

  constructor(private readonly options: ActiveStandbyOptions) {
    this.now = options.now ?? Date.now;
    this.log = options.logger.child({ component: 'ha', holder: options.lease.holder });
  }

  get role(): Role {
    return this.current;
  }

  get holder(): string {
    return this.options.lease.holder;
  }

  /** Milliseconds since this instance last took or renewed the lease (undefined unless active). */
  get leaseAgeMs(): number | undefined {
    return this.current === 'active' && this.lastRenewedAt !== undefined ? this.now() - this.lastRenewedAt : undefined;
  }

  start(): void {
    this.log.info({ key: this.options.lease.key, leaseMs: this.options.lease.ttlMs }, 'standby: waiting for the lease');
    // Standbys try a few times per lease period, so that a lease left to expire is taken within about a fifth of it.
    this.schedule(0);
  }

  /** A graceful stop: give the lease up so the standby takes over at once. */
  async stop(): Promise<void> {
    const wasActive = this.current === 'active';
    this.current = 'stopped';
    clearTimeout(this.timer);
    if (wasActive) await this.options.lease.release().catch((err: unknown) => this.log.warn({ err }, 'could not release the lease'));
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.current === 'stopped' || this.current === 'stepped-down') return;
    this.ticking = true;
    try {
      await this.carryOut();
    } finally {
      this.ticking = false;
    }
    if (this.current === 'active') this.schedule(Math.floor(this.options.lease.ttlMs / 3));
    else if (this.current === 'standby') this.schedule(Math.floor(this.options.lease.ttlMs / 5));
  }

  private async carryOut(): Promise<void> {
    const now = this.now();
    if (this.current === 'active') {
      if (this.options.asteriskConnected()) this.asteriskDownSince = undefined;
      else this.asteriskDownSince ??= now;
    }
    const decision = decideTick({
      role: this.current,
      now,
      validUntil: this.validUntil,
      asteriskDownSince: this.asteriskDownSince,
      leaseMs: this.options.lease.ttlMs,
    });
    switch (decision.do) {
      case 'acquire': {
        const taken = await this.options.lease.acquire().catch((err: unknown) => {
          // Once per outage: a standby tries several times a lease period.
          if (!this.redisFailing) this.log.warn({ err: String(err) }, 'standby: cannot reach Redis to try the lease; trying on');
          this.redisFailing = true;
          return undefined;
        });
        if (taken) this.redisFailing = false;
        if (!taken?.acquired || (this.current as Role) !== 'standby') return;
        this.current = 'active';
        this.validUntil = now + this.options.lease.ttlMs;
        this.lastRenewedAt = now;
        this.activeSince = now;
        this.asteriskDownSince = now; // not connected yet: the grace period starts now
        this.tookOverFrom = taken.previousHolder;
        this.log.info({ previousHolder: taken.previousHolder }, taken.previousHolder ? `active: took over from ${taken.previousHolder}` : 'active: took the lease; serving this Asterisk node');
        this.options.onActive();
        return;
      }
      case 'renew': {
        const renewed = await this.options.lease.renew().catch((err: unknown) => {
          this.log.warn({ err: String(err), validForMs: this.validUntil - this.now() }, 'active: could not renew the lease; retrying');
          return undefined;
        });
        if (renewed === undefined || this.current !== 'active') return;
        if (!renewed) return this.stepDown('another instance holds the lease', false);
        this.validUntil = now + this.options.lease.ttlMs;
        this.lastRenewedAt = now;
        return;
      }
      case 'step-down':
        return this.stepDown(decision.reason, decision.release);
      case 'nothing':
        return;
    }
  }

  private async stepDown(reason: string, release: boolean): Promise<void> {
    this.current = 'stepped-down';
    clearTimeout(this.timer);
    if (release) await this.options.lease.release().catch(() => undefined);
    this.log.error({ reason, activeForMs: this.activeSince !== undefined ? this.now() - this.activeSince : undefined }, `stepping down: ${reason}`);
    this.options.onSteppedDown(reason);
  }
}
