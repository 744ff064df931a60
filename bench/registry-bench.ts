// (c) memory of the registry per tracked channel, (d) time to resync it.
import { randomUUID } from 'node:crypto';
import { parseEventFrame } from '../src/ari/parse-event.js';
import { AriRestClient } from '../src/ari/rest-client.js';
import { createLogger } from '../src/logger.js';
import { CallRegistry } from '../src/registry/call-registry.js';
import { MemoryRegistryStore } from '../src/registry/memory-store.js';
import { EmulatorThread } from './emulator-thread.js';
import { ARI_APP, ARI_PASSWORD, ARI_USER } from './protocol.js';

const silent = createLogger('silent');

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc (npm run bench does)');
  for (let i = 0; i < 4; i++) gc();
}

const noRest = {
  listChannels: () => Promise.reject(new Error('not in this benchmark')),
  listBridges: () => Promise.reject(new Error('not in this benchmark')),
  getChannelVariable: () => Promise.reject(new Error('not in this benchmark')),
};

export interface MemoryResult {
  channels: number;
  bridges: number;
  callIds: number;
  heapDeltaBytes: number;
}

const stamp = '2026-01-01T09:00:00.000+0000';

/** A channel snapshot as Asterisk sends it for a phone call in Stasis. */
function channelJson(seq: number, endpoint: string, number: string, exten: string): string {
  const uniqueId = `1795265271.${seq}`;
  return JSON.stringify({
    id: uniqueId,
    name: `PJSIP/${endpoint}-${seq.toString(16).padStart(8, '0')}`,
    state: 'Up',
    protocol_id: `${randomUUID()}@10.0.${number.slice(-2)}.${exten.slice(-2)}`,
    caller: { name: `Phone ${number}`, number },
    connected: { name: '', number: '' },
    accountcode: '',
    dialplan: { context: 'from-phones', exten, priority: 2, app_name: 'Stasis', app_data: ARI_APP },
    creationtime: stamp,
    language: 'en',
  });
}

function bridgeJson(id: string, name: string, channels: string[]): string {
  return JSON.stringify({
    id,
    technology: 'simple_bridge',
    bridge_type: 'mixing',
    bridge_class: 'stasis',
    creator: 'Stasis',
    name,
    channels,
    creationtime: stamp,
    video_mode: 'talker',
  });
}

/** The four events of two-party call `i` (StasisStart ×2, ChannelEnteredBridge ×2), as JSON text the events socket receives. */
export function syntheticCallFrames(i: number): string[] {
  const head = (type: string) => `{"type":"${type}","timestamp":"${stamp}",`;
  const tail = `,"asterisk_id":"02:fc:00:00:00:01","application":"${ARI_APP}"}`;
  const a = `1795265271.${2 * i}`;
  const b = `1795265271.${2 * i + 1}`;
  const numberA = String(100000 + ((2 * i) % 900000));
  const numberB = String(100000 + ((2 * i + 1) % 900000));
  const chA = channelJson(2 * i, `ph${numberA}`, numberA, numberB);
  const chB = channelJson(2 * i + 1, `ph${numberB}`, numberB, numberA);
  const bridgeId = randomUUID();
  return [
    `${head('StasisStart')}"args":[],"channel":${chA}${tail}`,
    `${head('StasisStart')}"args":[],"channel":${chB}${tail}`,
    `${head('ChannelEnteredBridge')}"bridge":${bridgeJson(bridgeId, `call-${i}`, [a])},"channel":${chA}${tail}`,
    `${head('ChannelEnteredBridge')}"bridge":${bridgeJson(bridgeId, `call-${i}`, [a, b])},"channel":${chB}${tail}`,
  ];
}

/** Applies one event frame to a registry, as the service's event queue does. */
export async function applyFrame(registry: CallRegistry, text: string): Promise<void> {
  const parsed = parseEventFrame(text);
  if (parsed.kind !== 'event') throw new Error(`synthetic event rejected: ${JSON.stringify(parsed)}`);
  await registry.apply(parsed.event);
}

/** A registry that never asks Asterisk anything (the benchmarks feed it events only). */
export function eventFedRegistry(store: ConstructorParameters<typeof CallRegistry>[0]): CallRegistry {
  return new CallRegistry(store, noRest, silent);
}

/**
 * Feeds a fresh CallRegistry + MemoryRegistryStore `channels` StasisStart and
 * ChannelEnteredBridge events (two channels per bridge), parsed from JSON text
 * as the events socket does, and measures the heap it keeps after a full GC.
 */
export async function registryMemory(channels: number): Promise<MemoryResult> {
  collectGarbage();
  const before = process.memoryUsage().heapUsed;
  const registry = eventFedRegistry(new MemoryRegistryStore());
  for (let i = 0; i < channels / 2; i++) for (const frame of syntheticCallFrames(i)) await applyFrame(registry, frame);
  collectGarbage();
  const after = process.memoryUsage().heapUsed;
  const counts = await registry.store.counts(); // keeps the registry alive until here
  return { ...counts, heapDeltaBytes: after - before };
}

export interface ResyncResult {
  channels: number;
  bridges: number;
  /** First resync, into an empty registry (start-up). */
  coldMs: number;
  /** Later resyncs over a full registry (reconnection), each. */
  warmMs: number[];
  /** GET /channels and GET /bridges alone (in parallel, as resync does), each. */
  listMs: number[];
  /** Bytes of the two responses' JSON. */
  responseBytes: number;
}

/** An emulator holding `channels` channels in two-party bridges; CallRegistry.resync() against it. */
export async function registryResync(channels: number, warmRuns: number): Promise<ResyncResult> {
  const { thread, url } = await EmulatorThread.start(false);
  try {
    const counts = await thread.request({ op: 'populate', channels });
    const rest = new AriRestClient({ url, username: ARI_USER, password: ARI_PASSWORD, timeoutMs: 60_000 });
    const registry = new CallRegistry(new MemoryRegistryStore(), rest, silent);
    const time = async (fn: () => Promise<unknown>) => {
      const t0 = performance.now();
      await fn();
      return performance.now() - t0;
    };
    await time(() => Promise.all([rest.listChannels(), rest.listBridges()])); // warms the connections
    const coldMs = await time(() => registry.resync());
    const got = await registry.store.counts();
    if (got.channels !== counts.channels || got.bridges !== counts.bridges) {
      throw new Error(`resync saw ${got.channels}/${got.bridges}, the emulator holds ${counts.channels}/${counts.bridges}`);
    }
    const warmMs: number[] = [];
    const listMs: number[] = [];
    for (let i = 0; i < warmRuns; i++) {
      warmMs.push(await time(() => registry.resync()));
      listMs.push(await time(() => Promise.all([rest.listChannels(), rest.listBridges()])));
    }
    const [c, b] = await Promise.all([rest.listChannels(), rest.listBridges()]);
    return { ...counts, coldMs, warmMs, listMs, responseBytes: Buffer.byteLength(JSON.stringify(c)) + Buffer.byteLength(JSON.stringify(b)) };
  } finally {
    await thread.close();
  }
}

