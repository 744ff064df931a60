// An attended transfer whose Replaces names a dialog this node does not
// have, with REGISTRY=redis: the other nodes are asked through the shared
// registry (a real redis-server; "ast2" is another node's store publishing
// its calls). Joining calls across nodes is not built yet: the phone hears
// 503 either way, and the log says which of the two it was.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openRedis } from '../../src/redis/connection.js';
import { SharedRegistryStore } from '../../src/registry/shared-store.js';
import { channelRecord } from '../helpers/channels.js';
import { captureLogs } from '../helpers/log-capture.js';
import { RedisServer } from '../helpers/redis-server.js';
import { membersOf, setUpAttendedCalls, startHarness, transferFinished, waitUntil, type Harness } from './harness.js';

let redis: RedisServer;
let h: Harness;
let ast2: { store: SharedRegistryStore; close(): void };

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis.stop();
});
beforeEach(async () => {
  if (!redis.running) await redis.restart();
  const client = redis.client();
  await client.flushall();
  client.disconnect();
  h = await startHarness({ REGISTRY: 'redis', REDIS_URL: redis.url, ASTERISK_NODE: 'ast1' });
  // The other node's instance, as far as Redis is concerned.
  const logger = captureLogs().logger;
  let store: SharedRegistryStore | undefined;
  const connection = openRedis(redis.url, 'ast2', logger, { ready: () => store?.connected(), lost: () => store?.disconnected() });
  store = new SharedRegistryStore({ redis: connection, keyPrefix: 'ari-transfer', node: 'ast2', ttlMs: 30_000, logger });
  ast2 = { store, close: () => (store!.close(), connection.disconnect()) };
  await store.replaceAll([channelRecord('carol-on-ast2', { callId: 'consult@ast2' })], []);
  await waitUntil(() => store!.state === 'up' && h.service.notReadyReason === undefined, 'both nodes published');
});
afterEach(async () => {
  ast2.close();
  await h.close();
});

async function referToOtherNode() {
  const calls = await setUpAttendedCalls(h);
  const refer = h.emu.sendRefer(calls.bobFirst.id, {
    kind: 'attended',
    destination: '1003',
    replaces: { callId: 'consult@ast2', fromTag: 'a', toTag: 'b' },
  });
  return { calls, sipfrags: await refer.waitForTermination() };
}

describe('REGISTRY=redis: a Replaces dialog on another node', () => {
  it('found on ast2: 100 then 503, nothing moved, the log names the node', async () => {
    const { calls, sipfrags } = await referToOtherNode();
    expect(sipfrags).toEqual([100, 503]);
    await transferFinished(h);
    expect(membersOf(h, calls.originalBridge)).toEqual([calls.alice.id, calls.bobFirst.id].sort());
    expect(h.emu.hangups).toEqual([]);
    expect(h.logs.lines.find((l) => l.msg === 'attended transfer rejected')).toMatchObject({
      reason: 'dialog-on-another-node',
      detail: 'the call with SIP Call-ID consult@ast2 is on node ast2 (channel carol-on-ast2); transfers across nodes are not supported yet',
    });
  });

  it('Redis lost: the other nodes cannot be asked: 100 then 503, nothing moved, the log says why', async () => {
    await redis.stop();
    await waitUntil(() => h.service.notReadyReason !== undefined, 'the service to notice');
    const { calls, sipfrags } = await referToOtherNode();
    expect(sipfrags).toEqual([100, 503]);
    await transferFinished(h);
    expect(membersOf(h, calls.originalBridge)).toEqual([calls.alice.id, calls.bobFirst.id].sort());
    expect(h.logs.lines.find((l) => l.msg === 'attended transfer rejected')).toMatchObject({ reason: 'shared-registry-unavailable' });
  });
});
