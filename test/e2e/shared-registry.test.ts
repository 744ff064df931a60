// Transfers across nodes on the emulator, with REGISTRY=redis and a real
// redis-server. The service under test is node "ast1"; "ast2" is another
// node's store publishing its calls (and leaving join requests), as far as
// Redis is concerned. Both halves: ast1 transferring (its Replaces names a
// dialog on ast2: a join request for ast2, a call to node-ast2), and ast1
// joining (a call arrives from ast2 for a transfer there).
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
  await redis.reset();
  h = await startHarness({ REGISTRY: 'redis', REDIS_URL: redis.url, ASTERISK_NODE: 'ast1' });
  // The other node's instance, as far as Redis is concerned.
  const logger = captureLogs().logger;
  let store: SharedRegistryStore | undefined;
  const connection = openRedis(redis.url, 'ast2', logger, { ready: () => store?.connected(), lost: () => store?.disconnected() });
  store = new SharedRegistryStore({ redis: connection, keyPrefix: 'ari-transfer', node: 'ast2', ttlMs: 30_000, logger });
  ast2 = { store, close: () => (store!.close(), connection.disconnect()) };
  await store.replaceAll([channelRecord('carol-on-ast2', { callId: 'consult@ast2', bridgeId: 'consult-bridge-on-ast2' })], []);
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
  it('found on ast2: a join request for ast2, a call to node-ast2; once it answers it joins alice, bob hears 100 then 200 and his call is hung up', async () => {
    const { calls, sipfrags } = await referToOtherNode();
    expect(sipfrags).toEqual([100, 200]);
    const summary = await transferFinished(h);
    const leg = h.emu.requests.find((r) => r.method === 'POST' && /^\/channels\/transfer-/.test(r.path))!;
    expect(leg.query.endpoint).toBe(`PJSIP/xfer-${summary.transferId}@node-ast2`);
    // ast2's instance is told the call was joined here (it then hangs the replaced leg up).
    const client = redis.client();
    await waitUntil(async () => (await client.lrange(`ari-transfer:node:ast2:join:${summary.transferId}:joined`, 0, -1)).join() === '1', 'the word to ast2');
    client.disconnect();
    // What ast2's instance is asked to do with that call (taken by it; here, by the test).
    expect(await ast2.store.takeJoin(summary.transferId)).toEqual({ transferId: summary.transferId, fromNode: 'ast1', replacedId: 'carol-on-ast2' });
    const legId = leg.path.slice('/channels/'.length);
    expect(membersOf(h, calls.originalBridge)).toEqual([calls.alice.id, legId].sort());
    expect(h.emu.channel(calls.bobFirst.id)).toBeUndefined();
    expect(h.logs.lines.find((l) => l.msg === 'attended transfer planned across nodes: a call to the other node joins the transferees to its target')).toMatchObject({
      node: 'ast2',
      replacedChannelId: 'carol-on-ast2',
    });
  });

  it('blind, a destination TRANSFER_NODE_ROUTES puts on ast2: dialled there through the trunk, with the destination as the extension', async () => {
    await h.close();
    h = await startHarness({ REGISTRY: 'redis', REDIS_URL: redis.url, ASTERISK_NODE: 'ast1', TRANSFER_NODE_ROUTES: 'ast2=3\\d{3};ast1=1\\d{3}' });
    const calls = await setUpAttendedCalls(h);
    const refer = h.emu.sendRefer(calls.bobFirst.id, { kind: 'blind', destination: '3001' });
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await transferFinished(h);
    const leg = h.emu.requests.find((r) => r.method === 'POST' && /^\/channels\/transfer-/.test(r.path))!;
    expect(leg.query.endpoint).toBe('PJSIP/3001@node-ast2');
    expect(membersOf(h, calls.originalBridge)).toEqual([calls.alice.id, leg.path.slice('/channels/'.length)].sort());
    // A destination routed to this very node is dialled here, as without routes.
    const again = await setUpAttendedCalls(h);
    expect(await h.emu.sendRefer(again.bobFirst.id, { kind: 'blind', destination: '1001' }).waitForTermination()).toEqual([100, 200]);
    const local = h.emu.requests.filter((r) => r.method === 'POST' && /^\/channels\/transfer-/.test(r.path)).at(-1)!;
    expect(local.query.endpoint).toBe('PJSIP/1001');
  });

  it('the call to ast2 refused (congestion): 100 then 503, alice still with bob', async () => {
    h.emu.setEndpoint('node-ast2', { kind: 'congestion' });
    const { calls, sipfrags } = await referToOtherNode();
    expect(sipfrags).toEqual([100, 503]);
    await transferFinished(h);
    expect(membersOf(h, calls.originalBridge)).toEqual([calls.alice.id, calls.bobFirst.id].sort());
    expect(h.finished[0]).toMatchObject({ result: 'failed', sipfrags: [100, 503] });
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

describe('REGISTRY=redis: a call from another node joining a transfer there', () => {
  /** carol talks to bob's consultation leg here, on ast1. */
  async function consultationHere() {
    const carol = h.emu.phoneCalls({ endpoint: 'carol', exten: '300' });
    h.emu.answer(carol.id);
    const bobConsult = h.emu.phoneCalls({ endpoint: 'bob', exten: '300' });
    h.emu.answer(bobConsult.id);
    const bridge = h.emu.createBridge({ name: 'consultation' }).id;
    h.emu.addToBridge(bridge, carol.id);
    h.emu.addToBridge(bridge, bobConsult.id);
    await waitUntil(async () => (await h.service.registry.store.getChannel(bobConsult.id))?.bridgeId === bridge, 'the registry to see the bridge');
    return { carol, bobConsult, bridge };
  }

  /** The call ast2's service places for its transfer `id`, arriving over the trunk ([from-internode]). */
  const callFromAst2 = (id: string) => h.emu.phoneCalls({ endpoint: 'node-ast2', exten: `xfer-${id}`, args: ['internode'] });

  it('with its join request: the call goes into the replaced leg\'s bridge, is answered, and the replaced leg is hung up', async () => {
    const { carol, bobConsult, bridge } = await consultationHere();
    await ast2.store.offerJoin('ast1', { transferId: 'abc123', fromNode: 'ast2', replacedId: bobConsult.id });
    const trunk = callFromAst2('abc123');
    await waitUntil(() => h.logs.messages().includes('connected the call from node ast2; waiting for it to be joined there'), 'the call connected');
    expect(membersOf(h, bridge)).toEqual([bobConsult.id, carol.id, trunk.id].sort());
    expect(h.emu.channel(trunk.id)?.state).toBe('Up');
    // ast2 joined it on its side: only now does the replaced leg go.
    await ast2.store.confirmJoin('ast1', 'abc123', true);
    await waitUntil(() => h.emu.channel(bobConsult.id) === undefined, 'the replaced leg to be hung up');
    expect(membersOf(h, bridge)).toEqual([carol.id, trunk.id].sort());
    expect(h.logs.lines.find((l) => l.msg === 'joined the call from node ast2; hanging up the replaced leg')).toMatchObject({ confirmed: true });
    // Taken once: a second call for the same transfer would be refused.
    expect(await redis.keys()).not.toContain('ari-transfer:node:ast1:join:abc123');
  });

  it('ast2 could not join it on its side: the replaced leg stays, carol still talks to bob', async () => {
    const { carol, bobConsult, bridge } = await consultationHere();
    await ast2.store.offerJoin('ast1', { transferId: 'abc124', fromNode: 'ast2', replacedId: bobConsult.id });
    const trunk = callFromAst2('abc124');
    await waitUntil(() => h.logs.messages().includes('connected the call from node ast2; waiting for it to be joined there'), 'the call connected');
    await ast2.store.confirmJoin('ast1', 'abc124', false);
    h.emu.hangup(trunk.id); // ast2 hangs its call up
    await waitUntil(() => h.logs.messages().includes('node ast2 could not join the call: the replaced leg stays'), 'the word from ast2');
    await waitUntil(() => h.emu.channel(trunk.id) === undefined, 'the call from ast2 to end');
    expect(membersOf(h, bridge)).toEqual([carol.id, bobConsult.id].sort());
  });

  it('without a join request (expired, unknown): refused with congestion, nothing else touched', async () => {
    const { carol, bobConsult, bridge } = await consultationHere();
    const trunk = callFromAst2('feed01');
    await waitUntil(() => h.emu.channel(trunk.id) === undefined, 'the call to be refused');
    expect(h.emu.hangups.find((x) => x.channelId === trunk.id)).toMatchObject({ cause: 34 });
    expect(membersOf(h, bridge)).toEqual([carol.id, bobConsult.id].sort());
    expect(h.logs.messages()).toContain('refusing a call from another node: no join request for this transfer (expired, or already taken)');
  });
});
