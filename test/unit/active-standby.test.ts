// The active/standby rules (decideTick), without Redis or timers.
import { describe, expect, it } from 'vitest';
import { decideTick, type LeaseView } from '../../src/ha/active-standby.js';

const active = (over: Partial<LeaseView> = {}): LeaseView => ({
  role: 'active',
  now: 10_000,
  validUntil: 12_000,
  asteriskDownSince: undefined,
  leaseMs: 5_000,
  ...over,
});

describe('decideTick', () => {
  it('a standby tries to take the lease', () => {
    expect(decideTick(active({ role: 'standby' }))).toEqual({ do: 'acquire' });
  });

  it('an active instance renews while its lease is surely its own', () => {
    expect(decideTick(active())).toEqual({ do: 'renew' });
  });

  it('an active instance past its last renewal + TTL steps down without releasing (another may hold it now)', () => {
    expect(decideTick(active({ now: 12_000 }))).toEqual({ do: 'step-down', reason: 'the lease could not be renewed in time', release: false });
  });

  it('Asterisk unreachable for less than a lease period: renew; for a whole one: release and step down', () => {
    expect(decideTick(active({ asteriskDownSince: 5_001 }))).toEqual({ do: 'renew' });
    expect(decideTick(active({ asteriskDownSince: 5_000 }))).toEqual({
      do: 'step-down',
      reason: 'Asterisk unreachable for 5000 ms: letting the standby try',
      release: true,
    });
  });

  it('a lease not renewed in time wins over Asterisk being unreachable: never release what may be another\'s', () => {
    expect(decideTick(active({ now: 12_000, asteriskDownSince: 0 }))).toMatchObject({ do: 'step-down', release: false });
  });

  it('stepped down or stopped: nothing more', () => {
    expect(decideTick(active({ role: 'stepped-down' }))).toEqual({ do: 'nothing' });
    expect(decideTick(active({ role: 'stopped' }))).toEqual({ do: 'nothing' });
  });
});
