// Entry point: configuration, logging, the HTTP API, the service, and signals.
import { ConfigError, describeConfig, loadConfig, type Config } from './config.js';
import type { HttpService } from './http/app.js';
import { HttpListenError, startHttpServer, type HttpServer } from './http/server.js';
import { createLogger, type Logger } from './logger.js';
import { ActiveStandby } from './ha/active-standby.js';
import { leaseKey, RedisLease } from './ha/lease.js';
import { openRedis, probeRedis, RedisUnreachableError } from './redis/connection.js';
import { TransferService } from './service.js';

/** Exit code for bad configuration, distinct from crashes (1). */
export const EXIT_CONFIG = 2;
/** Exit code of an active instance that lost its lease: restarted, it joins as the standby. */
export const EXIT_STEPPED_DOWN = 3;

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`ari-transfer: ${err.message}\n`);
    process.exit(EXIT_CONFIG);
  }

  const log = createLogger(config.logLevel);
  log.info({ config: describeConfig(config) }, 'configuration loaded');
  // A shared registry that cannot be reached at start is a set-up error:
  // say so and stop, rather than run as a node nobody else can see.
  if (config.registry.redis) {
    try {
      await probeRedis(config.registry.redis.url);
    } catch (err) {
      if (!(err instanceof RedisUnreachableError)) throw err;
      log.fatal({ code: err.code, endpoint: err.url }, `${err.message} (REDIS_URL, REGISTRY=redis)`);
      process.stderr.write(`ari-transfer: ${err.message} (REDIS_URL, REGISTRY=redis)\n`);
      process.exit(EXIT_CONFIG);
    }
  }
  const service = new TransferService(config, log);
  const ha = config.ha.mode === 'active-standby' ? activeStandby(config, service, log) : undefined;

  // The API listens before the service connects: an instance that cannot
  // serve its port (say, a second one started by mistake) must exit before it
  // takes the Stasis application over from the one already running.
  let http: HttpServer;
  try {
    http = await startHttpServer({ service: ha ? withRole(service, ha) : service, config: config.http, logger: log });
  } catch (err) {
    if (!(err instanceof HttpListenError)) throw err;
    log.fatal({ host: err.host, port: err.port, code: err.code }, err.message);
    process.exit(1);
  }
  log.info({ url: http.url, port: http.port }, `HTTP API listening on ${http.url}`);
  // A standby connects to ARI only once it holds the lease.
  if (ha) ha.start();
  else service.start();

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    // The service first: transfers in flight get their grace period while
    // /healthz still answers (and /readyz says "shutting down").
    service
      .stop(config.shutdownGraceMs)
      // Given up once the transfers are done with, so the standby takes over at once.
      .then(() => ha?.stop())
      .then(() => http.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled promise rejection'));
}

function activeStandby(config: Config, service: TransferService, log: Logger): ActiveStandby {
  const redisConfig = config.registry.redis!; // HA_MODE=active-standby requires REGISTRY=redis (config.ts)
  const redis = openRedis(redisConfig.url, `ari-transfer lease ${config.registry.node}`, log, { ready: () => {}, lost: () => {} });
  const lease = new RedisLease(redis, leaseKey(redisConfig.keyPrefix, config.registry.node), config.ha.instanceId, config.ha.leaseMs);
  const ha: ActiveStandby = new ActiveStandby({
    lease,
    asteriskConnected: () => service.connected,
    onActive: () => {
      if (ha.tookOverFrom) service.metrics.tookOver();
      service.start();
    },
    onSteppedDown: (reason) => {
      log.fatal({ reason, exitCode: EXIT_STEPPED_DOWN }, 'no longer the active instance: exiting (restarted, this instance joins as the standby)');
      process.exit(EXIT_STEPPED_DOWN);
    },
    logger: log,
  });
  service.metrics.trackHa({ active: () => ha.role === 'active', leaseAgeMs: () => ha.leaseAgeMs });
  return ha;
}

/** The service as the HTTP API sees it, with its role in the pair. */
function withRole(service: TransferService, ha: ActiveStandby): HttpService {
  return {
    registry: service.registry,
    metrics: service.metrics,
    history: service.history,
    transfers: service.transfers,
    get role() {
      return ha.role;
    },
    get notReadyReason() {
      if (ha.role === 'standby') return `standby: another instance holds the lease of node ${service.node}`;
      return service.notReadyReason;
    },
  };
}

main().catch((err: unknown) => {
  process.stderr.write(`ari-transfer: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
