// Redis connections: a one-shot probe for the start (an unreachable Redis
// must stop the process with a clear error), and the long-lived connection
// that reconnects by itself.
import { Redis } from 'ioredis';
import type { Logger } from '../logger.js';

export class RedisUnreachableError extends Error {
  override readonly name = 'RedisUnreachableError';
  readonly code = 'REDIS_UNREACHABLE';
  constructor(
    readonly url: string,
    reason: string,
  ) {
    super(`Redis at ${url} is unreachable: ${reason}`);
  }
}

/** Where a URL points, without its credentials (for logs and errors). */
export function redisEndpoint(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
}

/** Connects once, without retrying, and PINGs; throws RedisUnreachableError. */
export async function probeRedis(url: string, timeoutMs = 5_000): Promise<void> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
  // connect() rejects with a bare "Connection is closed."; the cause (ECONNREFUSED...) comes as an 'error' event.
  let cause: string | undefined;
  client.on('error', (err: Error) => (cause ??= err.message));
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    throw new RedisUnreachableError(redisEndpoint(url), cause ?? (err instanceof Error ? err.message : String(err)));
  } finally {
    client.disconnect();
  }
}

export interface RedisConnectionEvents {
  /** Connected (again) and ready for commands. */
  ready(): void;
  /** The connection was lost; ioredis is reconnecting. */
  lost(reason: string): void;
}

/**
 * A connection that reconnects forever (100 ms doubling to 2 s). Commands
 * fail at once while it is down instead of queueing without bound: the
 * callers know how to catch up when it is back.
 */
export function openRedis(url: string, name: string, logger: Logger, events: RedisConnectionEvents, options: { lazy?: boolean } = {}): Redis {
  const log = logger.child({ component: 'redis', connection: name });
  const client = new Redis(url, {
    // lazy: no connection until connect() is called.
    lazyConnect: options.lazy ?? false,
    connectionName: name,
    enableOfflineQueue: false,
    // A command in flight when the connection drops fails instead of being
    // sent again later, when it may carry stale data.
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // Commands issued in one tick go out in one write.
    enableAutoPipelining: true,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(100 * 2 ** (times - 1), 2_000),
  });
  let up = false;
  client.on('ready', () => {
    up = true;
    log.info({ endpoint: redisEndpoint(url) }, 'connected to Redis');
    events.ready();
  });
  client.on('error', (err: Error) => {
    // ioredis emits one per failed attempt: log the first of a run only.
    if (up) log.warn({ err: err.message }, 'Redis connection error');
  });
  client.on('close', () => {
    if (!up) return;
    up = false;
    log.error({ endpoint: redisEndpoint(url) }, 'lost the connection to Redis; reconnecting');
    events.lost('connection closed');
  });
  return client;
}
