// (e) The shared registry on a real redis-server, each number beside its
// baseline: registry updates per second (memory store vs. the store that
// publishes to Redis), Redis memory per call, the Call-ID look-up on another
// node (vs. the local one), and the failover time of an active/standby pair
// (vs. restarting a lone instance), with service processes and the emulator.
import { Redis } from 'ioredis';
import { createLogger } from '../src/logger.js';
import { openRedis } from '../src/redis/connection.js';
import { MemoryRegistryStore } from '../src/registry/memory-store.js';
import { SharedRegistryStore } from '../src/registry/shared-store.js';
import type { RegistryStore } from '../src/registry/types.js';
import { RedisServer } from '../test/helpers/redis-server.js';
import { ServiceProcess } from '../test/integration/service-process.js';
import { EmulatorThread } from './emulator-thread.js';
import { ARI_APP, ARI_PASSWORD, ARI_USER } from './protocol.js';
import { applyFrame, eventFedRegistry, syntheticCallFrames } from './registry-bench.js';

const silent = createLogger('silent');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A SharedRegistryStore for `node` on its own connection, published (first resync done). */
async function sharedStore(url: string, node: string): Promise<{ store: SharedRegistryStore; redis: Redis }> {
  let store: SharedRegistryStore | undefined;
  const redis = openRedis(url, `bench ${node}`, silent, { ready: () => store?.connected(), lost: () => store?.disconnected() });
  store = new SharedRegistryStore({ redis, keyPrefix: 'bench', node, ttlMs: 600_000, logger: silent });
  await store.replaceAll([], []);
  await until(() => store!.state === 'up', `${node} published`);
  return { store, redis };
}

export interface UpdateRateResult {
  store: 'memory' | 'redis';
  calls: number;
  events: number;
  seconds: number;
  cpuMs: number;
  /** Redis used_memory growth per two-party call (redis only). */
  redisBytesPerCall: number | undefined;
}

/** Feeds `calls` two-party calls' events (4 each, one per event-loop turn) to a registry; for Redis, until the last write is in. */
export async function updateRate(kind: 'memory' | 'redis', calls: number, url: string): Promise<UpdateRateResult> {
  const shared = kind === 'redis' ? await sharedStore(url, 'rate') : undefined;
  const store: RegistryStore = shared?.store ?? new MemoryRegistryStore();
  const registry = eventFedRegistry(store);
  const frames = Array.from({ length: calls }, (_, i) => syntheticCallFrames(i)).flat();
  const memoryBefore = shared ? await usedMemory(shared.redis) : 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (const frame of frames) {
    await applyFrame(registry, frame);
    // Each event arrives in a WebSocket message of its own: a turn of the event loop each.
    await new Promise(setImmediate);
  }
  // Writes go out in order on one connection: once a PING is answered, every write before it is in.
  if (shared) await shared.redis.ping();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  let redisBytesPerCall: number | undefined;
  if (shared) {
    if (shared.store.state !== 'up') throw new Error('the shared store fell behind (a write failed)');
    redisBytesPerCall = ((await usedMemory(shared.redis)) - memoryBefore) / calls;
    shared.store.close();
    await shared.redis.flushall();
    shared.redis.disconnect();
  }
  return { store: kind, calls, events: frames.length, seconds, cpuMs: (cpu.user + cpu.system) / 1000, redisBytesPerCall };
}

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? NaN);
}

export interface LookupResult {
  where: 'this node (memory)' | 'another node (Redis)';
  nodes: number;
  samples: number[];
}

/**
 * `nodes` nodes of `callsPerNode` calls each in one Redis; look-ups from
 * node 0 of Call-IDs on the last node, against look-ups of its own.
 */
export async function lookupLatency(url: string, nodes: number, callsPerNode: number, samples: number): Promise<LookupResult[]> {
  const opened = [];
  for (let n = 0; n < nodes; n++) opened.push(await sharedStore(url, `node${n}`));
  const callIds: string[][] = [];
  for (const [n, { store }] of opened.entries()) {
    const registry = eventFedRegistry(store);
    const ids: string[] = [];
    for (let i = 0; i < callsPerNode; i++) {
      for (const frame of syntheticCallFrames(n * callsPerNode + i)) await applyFrame(registry, frame);
    }
    for (const c of await store.listChannels()) if (c.callId) ids.push(c.callId);
    callIds.push(ids);
  }
  await opened[0]!.redis.ping();
  for (const { redis } of opened) await redis.ping();
  const here = opened[0]!.store;
  const time = async (fn: () => Promise<unknown>) => {
    const t0 = performance.now();
    await fn();
    return performance.now() - t0;
  };
  const local: number[] = [];
  const remote: number[] = [];
  const mine = callIds[0]!;
  const theirs = callIds[nodes - 1]!;
  for (let i = 0; i < samples; i++) {
    local.push(await time(() => here.channelsByCallId(mine[i % mine.length]!)));
    const found = await here.findOnOtherNodes(theirs[i % theirs.length]!);
    if (found.length !== 1) throw new Error(`look-up found ${found.length} channels`);
    remote.push(await time(() => here.findOnOtherNodes(theirs[i % theirs.length]!)));
  }
  for (const { store, redis } of opened) {
    store.close();
    redis.disconnect();
  }
  await new Redis(url).flushall().catch(() => undefined);
  return [
    { where: 'this node (memory)', nodes, samples: local },
    { where: 'another node (Redis)', nodes, samples: remote },
  ];
}

export interface FailoverResult {
  how: 'standby takes over' | 'lone instance restarted';
  leaseMs: number;
  samples: number[];
}

/**
 * Active killed (SIGKILL) → the other instance answering /readyz 200, `runs`
 * times; baseline: a lone instance killed and started again at once (what a
 * supervisor does), until its /readyz says 200.
 */
export async function failoverTime(url: string, runs: number, leaseMs: number): Promise<FailoverResult[]> {
  const { thread, url: ariUrl } = await EmulatorThread.start(false);
  const env = (extra: Record<string, string>) => ({
    ARI_URL: ariUrl,
    ARI_USERNAME: ARI_USER,
    ARI_PASSWORD: ARI_PASSWORD,
    ARI_APP,
    ROUTING: 'none',
    LOG_LEVEL: 'info',
    ...extra,
  });
  const pair = { REGISTRY: 'redis', REDIS_URL: url, ASTERISK_NODE: 'bench', HA_MODE: 'active-standby', HA_LEASE_MS: String(leaseMs) };
  const live: ServiceProcess[] = [];
  const start = (extra: Record<string, string>) => {
    const s = ServiceProcess.start(env(extra));
    live.push(s);
    return s;
  };
  try {
    const takeover: number[] = [];
    let active = start({ ...pair, INSTANCE_ID: 'i0' });
    await until(() => active.ready(), 'the first active instance');
    let standby = start({ ...pair, INSTANCE_ID: 'i1' });
    for (let run = 0; run < runs; run++) {
      await until(() => standby.messages().includes('standby: waiting for the lease'), 'the standby');
      const t0 = performance.now();
      await active.kill();
      await until(() => standby.ready(), 'the standby to serve');
      takeover.push(performance.now() - t0);
      active = standby;
      standby = start({ ...pair, INSTANCE_ID: `i${run + 2}` });
    }
    for (const s of live) await s.kill();

    const restart: number[] = [];
    let lone = start({});
    await until(() => lone.ready(), 'a lone instance');
    for (let run = 0; run < runs; run++) {
      const t0 = performance.now();
      await lone.kill();
      lone = start({});
      await until(() => lone.ready(), 'the restarted instance');
      restart.push(performance.now() - t0);
    }
    return [
      { how: 'standby takes over', leaseMs, samples: takeover },
      { how: 'lone instance restarted', leaseMs, samples: restart },
    ];
  } finally {
    for (const s of live) await s.kill();
    await thread.close();
  }
}

/** A redis-server of the benchmark's own, stopped afterwards. */
export async function withRedis<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const server = await RedisServer.start();
  try {
    return await fn(server.url);
  } finally {
    await server.stop();
  }
}
