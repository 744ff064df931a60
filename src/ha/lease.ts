// The lease in Redis that makes one instance of a pair the active one for
// its Asterisk node: a key holding the holder's id, expiring unless renewed.
// Renewing and releasing check the holder in one step (a script), so an
// instance can never extend or delete a lease another one has taken since.
import type { Redis } from 'ioredis';

// Takes the lease if free and remembers the holder in a second key (for a
// week: a node gone for good leaves nothing forever), so that a new holder
// can tell a failover from a first start.
const ACQUIRE = `if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  local previous = redis.call('GET', KEYS[2])
  redis.call('SET', KEYS[2], ARGV[1], 'PX', 604800000)
  return {1, previous or ''}
end
return {0, ''}`;
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

export function leaseKey(prefix: string, node: string): string {
  return `${prefix}:node:${node}:lease`;
}

export class RedisLease {
  constructor(
    private readonly redis: Redis,
    readonly key: string,
    readonly holder: string,
    readonly ttlMs: number,
  ) {}

  /**
   * Takes the lease if nobody holds it. `previousHolder`: the instance that
   * held it last, if another one (this one is taking over from it).
   */
  async acquire(): Promise<{ acquired: boolean; previousHolder: string | undefined }> {
    const [taken, previous] = (await this.redis.eval(ACQUIRE, 2, this.key, `${this.key}:last-holder`, this.holder, String(this.ttlMs))) as [number, string];
    return { acquired: taken === 1, previousHolder: taken === 1 && previous && previous !== this.holder ? previous : undefined };
  }

  /** Extends the lease; false when this instance no longer holds it. */
  async renew(): Promise<boolean> {
    return (await this.redis.eval(RENEW, 1, this.key, this.holder, String(this.ttlMs))) === 1;
  }

  /** Gives the lease up (a graceful stop), if this instance still holds it. */
  async release(): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.key, this.holder);
  }

  /** Who holds it now, if anybody. */
  holderNow(): Promise<string | null> {
    return this.redis.get(this.key);
  }
}
