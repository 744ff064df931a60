// `npm run test:integration`: the transfer scenarios played by SIPp phones
// against a real Asterisk running asterisk-config/ and the real service.
//
// Which Asterisk, in this order:
//   1. the one named by ASTERISK_ARI_URL (+ credentials, ASTERISK_SIP_HOST/PORT);
//   2. one started from docker/asterisk with testcontainers, if a Docker
//      engine is reachable;
//   3. none: one line says the suite was skipped and why, exit 0.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CONFIG_DEFAULTS, pingAri, targetFromEnv } from '../test/integration/asterisk-target.js';

const root = fileURLToPath(new URL('..', import.meta.url));

interface Started {
  env: Record<string, string>;
  stop(): Promise<void>;
}

async function dockerAsterisk(): Promise<Started | string> {
  const { GenericContainer, getContainerRuntimeClient } = await import('testcontainers');
  try {
    await getContainerRuntimeClient();
  } catch (err) {
    return `no Docker engine reachable (${(err as Error).message.split('\n')[0]})`;
  }
  console.log('integration: building and starting Asterisk from docker/asterisk with testcontainers ...');
  const image = await GenericContainer.fromDockerfile(root, 'docker/asterisk/Dockerfile').build('ari-transfer-asterisk:integration', {
    deleteOnExit: false,
  });
  // Host networking: asterisk-config's test phones are static contacts on
  // 127.0.0.1:5061-5064, where the SIPp phones listen.
  const container = await image.withNetworkMode('host').withStartupTimeout(180_000).start();
  const ariUrl = 'http://127.0.0.1:8088';
  const deadline = Date.now() + 120_000;
  let problem = await pingAri({ ariUrl, ...CONFIG_DEFAULTS });
  while (problem && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    problem = await pingAri({ ariUrl, ...CONFIG_DEFAULTS });
  }
  if (problem) {
    await container.stop();
    throw new Error(`the Asterisk container started but ARI never answered: ${problem}`);
  }
  return {
    env: { ASTERISK_ARI_URL: ariUrl, ASTERISK_SIP_HOST: '127.0.0.1', ASTERISK_SIP_PORT: '5060' },
    stop: async () => {
      await container.stop();
    },
  };
}

function runSuite(env: Record<string, string>): Promise<number> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('../node_modules/vitest/vitest.mjs', import.meta.url)), 'run', '--config', 'vitest.integration.config.ts'], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: 'inherit',
  });
  return new Promise((resolve) => child.on('close', (code) => resolve(code ?? 1)));
}

async function main(): Promise<number> {
  const named = targetFromEnv();
  let started: Started | undefined;
  if (named) {
    const problem = await pingAri(named);
    if (problem) {
      console.error(`integration: ASTERISK_ARI_URL=${named.ariUrl} is set but not usable: ${problem}`);
      return 1;
    }
  } else {
    const docker = await dockerAsterisk();
    if (typeof docker === 'string') {
      console.log(`integration suite skipped: ASTERISK_ARI_URL is not set and ${docker}; see README "Integration tests".`);
      return 0;
    }
    started = docker;
  }
  if (spawnSync('sipp', ['-v']).error) {
    console.error('integration: sipp not found; install it with: apt-get install sip-tester');
    await started?.stop();
    return 1;
  }
  try {
    return await runSuite(started?.env ?? {});
  } finally {
    await started?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('integration:', err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
