// The shared registry store on a real redis-server: what each node
// publishes, what survives Redis going away and coming back, and what a
// dead node leaves behind (nothing, once its TTL has passed).
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { openRedis } from '../../src/redis/connection.js';
import { nodeKeys } from '../../src/registry/redis-keys.js';
import { NODE_FIELD, SharedRegistryStore } from '../../src/registry/shared-store.js';
import type { ChannelRecord } from '../../src/registry/types.js';
import { channelRecord } from '../helpers/channels.js';
import { captureLogs } from '../helpers/log-capture.js';
import { RedisServer } from '../helpers/redis-server.js';

const PREFIX = 'test';
let server: RedisServer;
let reader: Redis;
const opened: { store: SharedRegistryStore; redis: Redis }[] = [];

beforeAll(async () => {
  server = await RedisServer.start();
});
afterAll(async () => {
  await server.stop();
});

beforeEach(async () => {
  if (!server.running) await server.restart();
  reader = server.client();
  await reader.flushall();
});

afterEach(async () => {
  for (const { store, redis } of opened.splice(0)) {
    store.close();
    redis.disconnect();
  }
  // Nothing but the test's own reader is left connected.
  if (server.running) {
    await vi.waitFor(async () => expect(String(await reader.client('LIST')).trim().split('\n')).toHaveLength(1));
  }
  reader.disconnect();
});

/** A node's store on its own connection, as the service opens it. */
function openNode(node: string, ttlMs = 30_000) {
  const logs = captureLogs();
  let store: SharedRegistryStore | undefined;
  const redis = openRedis(server.url, `test ${node}`, logs.logger, {
    ready: () => store?.connected(),
    lost: () => store?.disconnected(),
  });
  store = new SharedRegistryStore({ redis, keyPrefix: PREFIX, node, ttlMs, logger: logs.logger });
  opened.push({ store, redis });
  return { store, logs };
}

/** A node whose first resync from ARI found nothing: what is published from then on. */
async function openSyncedNode(node: string, ttlMs?: number) {
  const opened = openNode(node, ttlMs);
  await opened.store.replaceAll([], []);
  return opened;
}

async function published(node: string) {
  const keys = nodeKeys(PREFIX, node);
  const parse = (hash: Record<string, string>) =>
    Object.fromEntries(Object.entries(hash).filter(([field]) => field !== NODE_FIELD).map(([field, json]) => [field, JSON.parse(json) as unknown]));
  return {
    channels: parse(await reader.hgetall(keys.channels)) as Record<string, ChannelRecord>,
    bridges: parse(await reader.hgetall(keys.bridges)),
    callIds: parse(await reader.hgetall(keys.callIds)),
  };
}

const up = (store: SharedRegistryStore) => vi.waitFor(() => expect(store.state).toBe('up'));

describe('SharedRegistryStore on a real Redis', () => {
  it('publishes channels, bridges and the Call-ID index under its node, and follows every change', async () => {
    const { store } = await openSyncedNode('ast1');
    await up(store);
    await store.putChannel(channelRecord('alice', { callId: 'c-1' }));
    await store.putChannel(channelRecord('alice-loop', { callId: 'c-1', bridgeId: undefined }));
    await store.putBridge({ id: 'b1', name: 'call', channelIds: ['alice'] });
    await store.patchChannel('alice', { callId: 'c-2' }); // the index moves with it
    await store.removeChannel('alice-loop');
    await store.updateChannel('bob', () => channelRecord('bob', { callId: 'c-3' }));
    await store.removeBridge('b1');

    await vi.waitFor(async () =>
      expect(await published('ast1')).toEqual({
        channels: { alice: channelRecord('alice', { callId: 'c-2', dialogTags: undefined }), bob: channelRecord('bob', { callId: 'c-3' }) },
        bridges: {},
        callIds: { 'c-2': ['alice'], 'c-3': ['bob'] },
      }),
    );
    // JSON has no undefined: the record read back has no dialogTags key at all.
    expect((await published('ast1')).channels.alice).not.toHaveProperty('dialogTags');
  });

  it("publishes nothing before its first resync: a new active instance leaves the previous one's entries until it knows better", async () => {
    const before = await openSyncedNode('ast1');
    await before.store.putChannel(channelRecord('alice', { callId: 'c-1' }));
    await vi.waitFor(async () => expect(Object.keys((await published('ast1')).channels)).toEqual(['alice']));
    const { redis } = opened.splice(0)[0]!;
    before.store.close();
    redis.disconnect();

    const after = openNode('ast1').store;
    const connection = opened.at(-1)!.redis;
    // Its 'ready' handler (store.connected()) has run once the status says so.
    await vi.waitFor(() => expect(connection.status).toBe('ready'));
    expect(after.state).toBe('down');
    expect(Object.keys((await published('ast1')).channels)).toEqual(['alice']);
    await after.replaceAll([channelRecord('bob', { callId: 'c-2' })], []);
    await up(after);
    expect(await published('ast1')).toEqual({ channels: { bob: channelRecord('bob', { callId: 'c-2' }) }, bridges: {}, callIds: { 'c-2': ['bob'] } });
  });

  it('files each node under its own name and lists the live nodes', async () => {
    const a = (await openSyncedNode('ast1')).store;
    const b = (await openSyncedNode('ast2')).store;
    await Promise.all([up(a), up(b)]);
    await a.putChannel(channelRecord('alice', { callId: 'shared-call' }));
    await b.putChannel(channelRecord('carol', { callId: 'shared-call' }));
    await vi.waitFor(async () => {
      expect((await published('ast1')).callIds).toEqual({ 'shared-call': ['alice'] });
      expect((await published('ast2')).callIds).toEqual({ 'shared-call': ['carol'] });
    });
    expect((await reader.zrange(`${PREFIX}:nodes`, '0', '-1')).sort()).toEqual(['ast1', 'ast2']);
    const ttl = await reader.pttl(nodeKeys(PREFIX, 'ast1').channels);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(30_000);
  });

  it("finds a Call-ID among the other live nodes' channels, not its own, not a dead node's", async () => {
    const here = (await openSyncedNode('ast1')).store;
    const there = (await openSyncedNode('ast2')).store;
    await Promise.all([up(here), up(there)]);
    await here.putChannel(channelRecord('alice', { callId: 'shared' }));
    await there.putChannel(channelRecord('carol', { callId: 'shared', dialogTags: { local: 'l', remote: 'r' } }));
    // A node that stopped beating long ago, its keys not yet expired.
    await reader.zadd(`${PREFIX}:nodes`, Date.now() - 60_000, 'ast3');
    await reader.hset(nodeKeys(PREFIX, 'ast3').callIds, 'shared', JSON.stringify(['ghost']));
    await reader.hset(nodeKeys(PREFIX, 'ast3').channels, 'ghost', JSON.stringify(channelRecord('ghost', { callId: 'shared' })));
    await vi.waitFor(async () => expect(await here.findOnOtherNodes('shared')).toHaveLength(1));
    expect(await here.findOnOtherNodes('shared')).toEqual([{ node: 'ast2', channel: channelRecord('carol', { callId: 'shared', dialogTags: { local: 'l', remote: 'r' } }) }]);
    expect(await here.findOnOtherNodes('nobody')).toEqual([]);
  });

  it('cannot look elsewhere while Redis is gone, and says so', async () => {
    const { store } = await openSyncedNode('ast1');
    await up(store);
    reader.disconnect();
    await server.stop();
    await vi.waitFor(() => expect(store.state).toBe('down'));
    await expect(store.findOnOtherNodes('shared')).rejects.toMatchObject({ name: 'SharedRegistryUnavailable', message: expect.stringMatching(/^Redis is not connected/) });
    await server.restart();
    reader = server.client();
  });

  it('Redis lost while running: writes go on in memory, and everything is published again when it is back', async () => {
    const { store, logs } = await openSyncedNode('ast1');
    await up(store);
    await store.putChannel(channelRecord('alice', { callId: 'c-1' }));
    await vi.waitFor(async () => expect(Object.keys((await published('ast1')).channels)).toEqual(['alice']));

    reader.disconnect();
    await server.stop();
    await vi.waitFor(() => expect(store.state).toBe('down'));
    // While it is gone: nothing throws, the registry in memory stays current.
    await store.putChannel(channelRecord('bob', { callId: 'c-2' }));
    await store.removeChannel('alice');
    expect((await store.listChannels()).map((c) => c.id)).toEqual(['bob']);

    // Back, empty (no persistence): the node is published again as it is now.
    await server.restart();
    reader = server.client();
    await up(store);
    expect(await published('ast1')).toEqual({
      channels: { bob: channelRecord('bob', { callId: 'c-2' }) },
      bridges: {},
      callIds: { 'c-2': ['bob'] },
    });
    expect(logs.messages()).toEqual(
      expect.arrayContaining([
        'the shared registry (Redis) is out of date: local transfers go on; cross-node look-ups fail until it is published again',
        'published this node to the shared registry',
      ]),
    );
  });

  it('entries (or its write script) flushed from Redis behind its back are published again by the next heartbeat', async () => {
    const { store } = await openSyncedNode('ast1', 600);
    await up(store);
    await store.putChannel(channelRecord('alice', { callId: 'c-1' }));
    await vi.waitFor(async () => expect(Object.keys((await published('ast1')).channels)).toEqual(['alice']));
    await reader.flushall();
    await vi.waitFor(async () => expect(Object.keys((await published('ast1')).channels)).toEqual(['alice']));
    // Its write script flushed too: the next write fails, and everything is published again.
    await reader.script('FLUSH');
    await store.putChannel(channelRecord('bob', { callId: 'c-2' }));
    await vi.waitFor(async () => expect(Object.keys((await published('ast1')).channels).sort()).toEqual(['alice', 'bob']));
    await up(store);
  });

  it("a live node's entries outlive the TTL; a dead node's expire", async () => {
    const ttlMs = 600;
    const { store } = await openSyncedNode('ast1', ttlMs);
    await up(store);
    await store.putChannel(channelRecord('alice', { callId: 'c-1' }));
    await vi.waitFor(async () => expect(Object.keys((await published('ast1')).channels)).toEqual(['alice']));
    // Three TTLs later, kept alive by the heartbeat.
    await new Promise((resolve) => setTimeout(resolve, 3 * ttlMs));
    expect(Object.keys((await published('ast1')).channels)).toEqual(['alice']);

    // The node dies (no heartbeat, no goodbye): its keys go by themselves.
    const { redis } = opened.splice(0)[0]!;
    store.close();
    redis.disconnect();
    await vi.waitFor(async () => expect(await server.keys()).toEqual([`${PREFIX}:nodes`]), { timeout: 5 * ttlMs });
  });
});
