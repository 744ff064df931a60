// The registry store REGISTRY asks for: memory (the default, nothing to
// run beside it) or redis (shared with the other nodes' instances).
import type { Redis } from 'ioredis';
import type { RegistryConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { openRedis } from '../redis/connection.js';
import { MemoryRegistryStore } from './memory-store.js';
import { SharedRegistryStore } from './shared-store.js';
import type { RegistryStore } from './types.js';

export interface OpenedStore {
  store: RegistryStore;
  /** Set with REGISTRY=redis. */
  shared: SharedRegistryStore | undefined;
  /** Connects to Redis (only the active instance of a pair publishes its node). */
  connect(): void;
  /** Stops the heartbeat and closes the connection. */
  close(): Promise<void>;
}

export function openRegistryStore(config: RegistryConfig, logger: Logger): OpenedStore {
  if (config.kind === 'memory' || !config.redis) {
    return { store: new MemoryRegistryStore(), shared: undefined, connect: () => {}, close: async () => {} };
  }
  const { url, keyPrefix, ttlMs } = config.redis;
  let shared: SharedRegistryStore | undefined;
  // The connection reports asynchronously, after `shared` below exists.
  const redis: Redis = openRedis(
    url,
    `ari-transfer registry ${config.node}`,
    logger,
    { ready: () => shared?.connected(), lost: () => shared?.disconnected() },
    { lazy: true },
  );
  shared = new SharedRegistryStore({ redis, keyPrefix, node: config.node, ttlMs, logger });
  const store = shared;
  return {
    store,
    shared,
    // Failures are the connection's to report and retry.
    connect: () => void redis.connect().catch(() => undefined),
    close: async () => {
      store.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
