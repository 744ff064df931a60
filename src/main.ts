// Entry point: configuration, logging, the HTTP API, the service, and signals.
import { ConfigError, describeConfig, loadConfig, type Config } from './config.js';
import { HttpListenError, startHttpServer, type HttpServer } from './http/server.js';
import { createLogger } from './logger.js';
import { probeRedis, RedisUnreachableError } from './redis/connection.js';
import { TransferService } from './service.js';

/** Exit code for bad configuration, distinct from crashes (1). */
export const EXIT_CONFIG = 2;

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

  // The API listens before the service connects: an instance that cannot
  // serve its port (say, a second one started by mistake) must exit before it
  // takes the Stasis application over from the one already running.
  let http: HttpServer;
  try {
    http = await startHttpServer({ service, config: config.http, logger: log });
  } catch (err) {
    if (!(err instanceof HttpListenError)) throw err;
    log.fatal({ host: err.host, port: err.port, code: err.code }, err.message);
    process.exit(1);
  }
  log.info({ url: http.url, port: http.port }, `HTTP API listening on ${http.url}`);
  service.start();

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    // The service first: transfers in flight get their grace period while
    // /healthz still answers (and /readyz says "shutting down").
    service
      .stop(config.shutdownGraceMs)
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

main().catch((err: unknown) => {
  process.stderr.write(`ari-transfer: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
