// Entry point: configuration, logging, the service, and signals.
import { ConfigError, describeConfig, loadConfig, type Config } from './config.js';
import { createLogger } from './logger.js';
import { TransferService } from './service.js';

/** Exit code for bad configuration, distinct from crashes (1). */
export const EXIT_CONFIG = 2;

function main(): void {
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
  const service = new TransferService(config, log);
  service.start();

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    service.stop(config.shutdownGraceMs).then(
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

main();
