// The registry store for REGISTRY=redis: this node's channels, bridges and
// Call-ID index kept in memory, as with the memory store, and published to
// Redis as they change, for the other nodes' look-ups.
//
// One active instance writes a node's entries (the lease sees to that), so
// the copy in memory is the truth and Redis a mirror of it: reads never wait
// on Redis, and a write is sent without being awaited (commands on one
// connection arrive in order). When Redis is lost, writes are dropped and
// the whole node is published again once it is back (a new "generation").
//
//   down --ready--> publishing --ok--> up --a write fails / lost--> down
//                        |fails (retried by the heartbeat)
//                        v
//                      down
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { MemoryRegistryStore, type MemoryStoreOptions } from './memory-store.js';
import { joinKey, nodeKeys, nodesKey, type NodeKeys } from './redis-keys.js';
import { SharedRegistryUnavailable, type BridgeRecord, type ChannelRecord, type JoinRequest, type OtherNodes, type RegistryCounts, type RegistryStore, type RemoteChannel } from './types.js';

export type MirrorState = 'down' | 'publishing' | 'up';

/**
 * A field no SIP Call-ID or ARI id can be (a space is not allowed in
 * either): it keeps each hash in existence while the node has nothing in
 * it, so the heartbeat's PEXPIRE always finds the key.
 */
export const NODE_FIELD = ' node';

/** A join request not taken by then is stale (the trunk call it announced has long failed). */
const JOIN_TTL_MS = 60_000;

export interface SharedStoreOptions extends MemoryStoreOptions {
  redis: Redis;
  keyPrefix: string;
  node: string;
  /** A node's entries expire this long after its last heartbeat. */
  ttlMs: number;
  logger: Logger;
}

export class SharedRegistryStore implements RegistryStore, OtherNodes {
  private readonly local: MemoryRegistryStore;
  private readonly redis: Redis;
  private readonly keys: NodeKeys;
  private readonly nodes: string;
  readonly node: string;
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly log: Logger;
  private current: MirrorState = 'down';
  /** Bumped by every full publish: a failure of an older write is already covered. */
  private generation = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  /**
   * Set by the first replaceAll (the first resync from ARI): until then the
   * memory holds nothing worth publishing, and publishing it would wipe the
   * entries a previous instance left for the other nodes.
   */
  private primed = false;
  /** What changed since the last flush (ids and Call-IDs; the values are read at flush time). */
  private dirty = { channels: new Set<string>(), bridges: new Set<string>(), callIds: new Set<string>() };
  private flushScheduled = false;
  private readonly applySha = createHash('sha1').update(APPLY_CHANGES).digest('hex');

  constructor(options: SharedStoreOptions) {
    this.local = new MemoryRegistryStore(options);
    this.redis = options.redis;
    this.node = options.node;
    this.prefix = options.keyPrefix;
    this.keys = nodeKeys(options.keyPrefix, options.node);
    this.nodes = nodesKey(options.keyPrefix);
    this.ttlMs = options.ttlMs;
    this.now = options.now ?? Date.now;
    this.log = options.logger.child({ component: 'shared-registry', node: options.node });
  }

  get state(): MirrorState {
    return this.current;
  }

  /** The connection is ready: publish everything, then keep it alive. */
  connected(): void {
    this.publishAll();
    if (!this.heartbeat) {
      this.heartbeat = setInterval(() => this.beat(), Math.max(100, Math.floor(this.ttlMs / 3)));
      this.heartbeat.unref();
    }
  }

  /** The connection was lost: writes are dropped until it is back. */
  disconnected(): void {
    this.markDown('connection lost');
  }

  /** Stops the heartbeat; the entries expire unless another instance takes the node over. */
  close(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  // Reads: from memory.
  getChannel(id: string) {
    return this.local.getChannel(id);
  }
  getBridge(id: string) {
    return this.local.getBridge(id);
  }
  channelsByCallId(callId: string) {
    return this.local.channelsByCallId(callId);
  }
  recentlyEnded(id: string) {
    return this.local.recentlyEnded(id);
  }
  listChannels() {
    return this.local.listChannels();
  }
  listBridges() {
    return this.local.listBridges();
  }
  counts(): Promise<RegistryCounts> {
    return this.local.counts();
  }

  /** The other live nodes' channels with this Call-ID: one round trip for the live nodes' indexes, one for the records found. */
  async findOnOtherNodes(callId: string): Promise<RemoteChannel[]> {
    if (this.redis.status !== 'ready') throw new SharedRegistryUnavailable(`Redis is not connected (${this.redis.status})`);
    try {
      const live = (await this.redis.zrangebyscore(this.nodes, this.now() - this.ttlMs, '+inf')).filter((n) => n !== this.node);
      if (live.length === 0) return [];
      const lookups = this.redis.pipeline();
      for (const node of live) lookups.hget(nodeKeys(this.prefix, node).callIds, callId);
      const indexed = (await lookups.exec()) ?? [];
      const hits = live.flatMap((node, i) => {
        const json = indexed[i]?.[1];
        return typeof json === 'string' ? (JSON.parse(json) as string[]).map((id) => ({ node, id })) : [];
      });
      if (hits.length === 0) return [];
      const reads = this.redis.pipeline();
      for (const { node, id } of hits) reads.hget(nodeKeys(this.prefix, node).channels, id);
      const records = (await reads.exec()) ?? [];
      return hits.flatMap(({ node }, i) => {
        const json = records[i]?.[1];
        return typeof json === 'string' ? [{ node, channel: JSON.parse(json) as ChannelRecord }] : [];
      });
    } catch (err) {
      throw new SharedRegistryUnavailable(`the shared registry cannot be read: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  async offerJoin(node: string, request: JoinRequest): Promise<void> {
    await this.ask(() => this.redis.set(joinKey(this.prefix, node, request.transferId), JSON.stringify(request), 'PX', JOIN_TTL_MS));
  }

  async takeJoin(transferId: string): Promise<JoinRequest | undefined> {
    const json = await this.ask(() => this.redis.getdel(joinKey(this.prefix, this.node, transferId)));
    return json ? (JSON.parse(json) as JoinRequest) : undefined;
  }

  async confirmJoin(node: string, transferId: string, joined: boolean): Promise<void> {
    const key = `${joinKey(this.prefix, node, transferId)}:joined`;
    await this.ask(() => this.redis.multi().rpush(key, joined ? '1' : '0').pexpire(key, JOIN_TTL_MS).exec());
  }

  async joinConfirmation(transferId: string, timeoutMs: number): Promise<boolean | undefined> {
    // BLPOP holds its connection until the answer: one of its own, for this wait only.
    const waiting = this.redis.duplicate({ lazyConnect: true });
    waiting.on('error', () => {});
    try {
      return await this.ask(async () => {
        await waiting.connect();
        const got = await waiting.blpop(`${joinKey(this.prefix, this.node, transferId)}:joined`, timeoutMs / 1000);
        return got ? got[1] === '1' : undefined;
      });
    } finally {
      waiting.disconnect();
    }
  }

  private async ask<T>(command: () => Promise<T>): Promise<T> {
    if (this.redis.status !== 'ready') throw new SharedRegistryUnavailable(`Redis is not connected (${this.redis.status})`);
    try {
      return await command();
    } catch (err) {
      throw new SharedRegistryUnavailable(`the shared registry cannot be reached: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  // Writes: to memory, then to Redis.
  async putChannel(record: ChannelRecord) {
    const before = this.local.peekChannel(record.id)?.callId;
    await this.local.putChannel(record);
    this.publishChannel(record.id, before);
  }

  async updateChannel(id: string, update: (previous: ChannelRecord | undefined) => ChannelRecord) {
    const before = this.local.peekChannel(id)?.callId;
    await this.local.updateChannel(id, update);
    this.publishChannel(id, before);
  }

  async patchChannel(id: string, patch: Partial<Omit<ChannelRecord, 'id'>>) {
    const before = this.local.peekChannel(id)?.callId;
    await this.local.patchChannel(id, patch);
    this.publishChannel(id, before);
  }

  async removeChannel(id: string) {
    const before = this.local.peekChannel(id)?.callId;
    await this.local.removeChannel(id);
    this.publishChannel(id, before);
  }

  async putBridge(record: BridgeRecord) {
    await this.local.putBridge(record);
    this.publishBridge(record.id);
  }

  async removeBridge(id: string) {
    await this.local.removeBridge(id);
    this.publishBridge(id);
  }

  async replaceAll(channels: ChannelRecord[], bridges: BridgeRecord[]) {
    await this.local.replaceAll(channels, bridges);
    this.primed = true;
    this.publishAll();
  }

  // Changes are collected and sent once per turn of the event loop, as one
  // transaction: the state as it is then is what is sent (not the writes
  // that led to it), so the last command for a key carries its latest value,
  // and a burst of events costs one round trip.
  private publishChannel(id: string, callIdBefore: string | undefined): void {
    if (this.current === 'down') return;
    this.dirty.channels.add(id);
    if (callIdBefore) this.dirty.callIds.add(callIdBefore);
    const callIdNow = this.local.peekChannel(id)?.callId;
    if (callIdNow) this.dirty.callIds.add(callIdNow);
    this.scheduleFlush();
  }

  private publishBridge(id: string): void {
    if (this.current === 'down') return;
    this.dirty.bridges.add(id);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const { channels, bridges, callIds } = this.dirty;
    this.dirty = { channels: new Set(), bridges: new Set(), callIds: new Set() };
    if (this.current === 'down' || channels.size + bridges.size + callIds.size === 0) return;
    const args = [
      ...changes(channels, (id) => json(this.local.peekChannel(id))),
      ...changes(bridges, (id) => json(this.local.peekBridge(id))),
      ...changes(callIds, (callId) => {
        const ids = this.local.peekCallId(callId);
        return ids.length ? JSON.stringify(ids) : undefined;
      }),
    ];
    // One command (a script) per flush: an ioredis command costs far more CPU than the bytes it carries.
    const generation = this.generation;
    // The script was loaded by publishAll, ahead of this on the same connection.
    this.redis.evalsha(this.applySha, 3, this.keys.channels, this.keys.bridges, this.keys.callIds, ...args).catch((err: unknown) => {
      if (generation === this.generation) this.markDown(`a write failed: ${String(err)}`);
    });
  }

  /** Replaces this node's entries in Redis with the ones in memory, as one transaction. */
  private publishAll(): void {
    if (!this.primed || this.redis.status !== 'ready') return;
    this.current = 'publishing';
    const generation = ++this.generation;
    // Everything goes now: what was waiting for the next flush is part of it.
    this.dirty = { channels: new Set(), bridges: new Set(), callIds: new Set() };
    const { channels, bridges, callIds } = this.local.peekAll();
    const stamp = JSON.stringify({ node: this.node, publishedAt: this.now() });
    // The flushes' script, loaded first: a Redis restarted (or SCRIPT FLUSHed) has forgotten it.
    this.redis.script('LOAD', APPLY_CHANGES).catch(() => undefined);
    const ops = this.redis
      .multi()
      .del(this.keys.channels, this.keys.bridges, this.keys.callIds)
      .hset(this.keys.channels, NODE_FIELD, stamp, ...channels.flatMap((c) => [c.id, JSON.stringify(c)]))
      .hset(this.keys.bridges, NODE_FIELD, stamp, ...bridges.flatMap((b) => [b.id, JSON.stringify(b)]))
      .hset(this.keys.callIds, NODE_FIELD, stamp, ...[...callIds].flatMap(([callId, ids]) => [callId, JSON.stringify(ids)]));
    this.expire(ops);
    // Writes made from now on queue behind this transaction on the connection.
    ops.exec().then(
      (results) => {
        const failed = results?.find(([err]) => err)?.[0];
        if (failed) throw failed;
        if (generation !== this.generation || this.current !== 'publishing') return;
        this.current = 'up';
        this.log.info({ channels: channels.length, bridges: bridges.length }, 'published this node to the shared registry');
      },
      (err: unknown) => {
        if (generation === this.generation) this.markDown(`publishing failed: ${String(err)}`);
      },
    );
  }

  private send(ops: ReturnType<Redis['multi']>): void {
    const generation = this.generation;
    ops.exec().then(
      (results) => {
        const failed = results?.find(([err]) => err)?.[0];
        if (failed && generation === this.generation) this.markDown(`a write failed: ${failed.message}`);
      },
      (err: unknown) => {
        if (generation === this.generation) this.markDown(`a write failed: ${String(err)}`);
      },
    );
  }

  /** Keeps this node's entries alive; publishes everything again if they were lost. */
  private beat(): void {
    if (this.redis.status !== 'ready') return;
    if (this.current === 'down') return this.publishAll();
    if (this.current !== 'up') return;
    const generation = this.generation;
    const ops = this.redis.multi();
    this.expire(ops);
    ops.exec().then(
      (results) => {
        if (generation !== this.generation) return;
        // PEXPIRE answers 0 for a key that is gone (expired, or flushed): publish again.
        const lost = results?.some(([err, value], i) => err || (i < 3 && value === 0));
        if (lost) {
          this.log.warn('this node\'s entries were missing from the shared registry; publishing them again');
          this.publishAll();
        }
      },
      (err: unknown) => {
        if (generation === this.generation) this.markDown(`heartbeat failed: ${String(err)}`);
      },
    );
  }

  /** The three PEXPIREs first (beat() reads their answers by position). */
  private expire(ops: ReturnType<Redis['multi']>): void {
    const now = this.now();
    ops
      .pexpire(this.keys.channels, this.ttlMs)
      .pexpire(this.keys.bridges, this.ttlMs)
      .pexpire(this.keys.callIds, this.ttlMs)
      .zadd(this.nodes, now, this.node)
      .zremrangebyscore(this.nodes, '-inf', now - this.ttlMs);
  }

  private markDown(reason: string): void {
    if (this.current === 'down') return;
    this.current = 'down';
    this.generation++;
    this.log.error({ reason }, 'the shared registry (Redis) is out of date: local transfers go on; cross-node look-ups fail until it is published again');
  }
}

const json = (value: object | undefined): string | undefined => (value === undefined ? undefined : JSON.stringify(value));

/** For one hash: [count of fields set, field, value, ..., count of fields deleted, field, ...]. */
function changes(ids: Set<string>, read: (id: string) => string | undefined): string[] {
  const set: string[] = [];
  const gone: string[] = [];
  for (const id of ids) {
    const value = read(id);
    if (value === undefined) gone.push(id);
    else set.push(id, value);
  }
  return [String(set.length / 2), ...set, String(gone.length), ...gone];
}

// Applies changes() of the three hashes (KEYS) in one step, in slices (Lua's unpack has a stack limit).
const APPLY_CHANGES = `
local a = 1
local function each(cmd, key, n, width)
  local i = 0
  while i < n do
    local m = math.min(n - i, 500)
    redis.call(cmd, key, unpack(ARGV, a, a + m * width - 1))
    a = a + m * width
    i = i + m
  end
end
for k = 1, 3 do
  local n = tonumber(ARGV[a]); a = a + 1
  each('HSET', KEYS[k], n, 2)
  n = tonumber(ARGV[a]); a = a + 1
  each('HDEL', KEYS[k], n, 1)
end
return 1`;
