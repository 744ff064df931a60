// `npm run test:integration`: the transfer scenarios played by SIPp phones
// against a real Asterisk running asterisk-config/ and the real service.
//
// Which Asterisk, in this order:
//   1. the one named by ASTERISK_ARI_URL (+ credentials, ASTERISK_SIP_HOST/PORT),
//      already running asterisk-config/;
//   2. a local install (ASTERISK_PREFIX, or `asterisk` on the PATH), started
//      here as a child process on free ports with a copy of asterisk-config/,
//      and stopped at the end whatever happens (test/integration/local-asterisk.ts);
//   3. one started from docker/asterisk with testcontainers, if a Docker
//      engine is reachable;
//   4. none: one line says the suite was skipped and why, exit 0.
// An Asterisk that is found but cannot be started is a failure, never a skip.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_DEFAULTS, pingAri, targetFromEnv } from '../test/integration/asterisk-target.js';
import { findAsterisk, LocalAsterisk } from '../test/integration/local-asterisk.js';

const root = fileURLToPath(new URL('..', import.meta.url));

interface Started {
  env: Record<string, string>;
  /** Printed when the suite fails: what Asterisk said meanwhile. */
  diagnostics(): string;
  stop(): Promise<void>;
}

async function localAsterisk(): Promise<Started | string> {
  const install = findAsterisk();
  if (typeof install === 'string') return install;
  console.log(`integration: starting ${install.binary} with a copy of asterisk-config/ ...`);
  const asterisk = await LocalAsterisk.start(install, fileURLToPath(new URL('../asterisk-config', import.meta.url)));
  const { sip, http, rtpStart, rtpEnd, phones } = asterisk.ports;
  console.log(
    `integration: Asterisk up: SIP 127.0.0.1:${sip}, ARI ${asterisk.target.ariUrl}, RTP ${rtpStart}-${rtpEnd}, ` +
      `phones 1001-1004 on ${phones['1001']}/${phones['1002']}/${phones['1003']}/${phones['1004']} (consultation ${phones.consult})`,
  );
  return {
    env: asterisk.env,
    diagnostics: () => `--- Asterisk console (last lines of ${asterisk.consoleLogFile}) ---\n${asterisk.consoleTail()}`,
    stop: () => asterisk.dispose(),
  };
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
    diagnostics: () => '',
    stop: async () => {
      await container.stop();
    },
  };
}

function runSuite(env: Record<string, string>, args: string[], resultsFile: string): Promise<number> {
  const vitest = fileURLToPath(new URL('../node_modules/vitest/vitest.mjs', import.meta.url));
  const reporters = ['--reporter=default', '--reporter=json', `--outputFile.json=${resultsFile}`];
  const child = spawn(process.execPath, [vitest, 'run', '--config', 'vitest.integration.config.ts', ...reporters, ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: 'inherit',
  });
  return new Promise((resolve) => child.on('close', (code) => resolve(code ?? 1)));
}

async function findTarget(): Promise<Started | string | undefined> {
  const named = targetFromEnv();
  if (named) {
    const problem = await pingAri(named);
    if (problem) throw new Error(`ASTERISK_ARI_URL=${named.ariUrl} is set but not usable: ${problem}`);
    return undefined;
  }
  const local = await localAsterisk();
  if (typeof local !== 'string') return local;
  const docker = await dockerAsterisk();
  return typeof docker === 'string' ? `ASTERISK_ARI_URL is not set, ${local}, and ${docker}` : docker;
}

async function main(): Promise<number> {
  if (spawnSync('sipp', ['-v']).error) {
    console.error('integration: sipp not found; install it with: apt-get install sip-tester');
    return 1;
  }
  const started = await findTarget();
  if (typeof started === 'string') {
    console.log(`integration suite skipped: ${started}; see README "Integration tests".`);
    return 0;
  }
  // Stopped whatever happens, also on Ctrl-C.
  const stopOnSignal = (signal: NodeJS.Signals) => {
    void (started?.stop() ?? Promise.resolve()).finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', stopOnSignal).once('SIGTERM', stopOnSignal);
  const resultsDir = mkdtempSync(join(tmpdir(), 'ari-transfer-results-'));
  const resultsFile = join(resultsDir, 'results.json');
  try {
    const code = await runSuite(started?.env ?? {}, process.argv.slice(2), resultsFile);
    if (code !== 0) {
      if (started) console.error(started.diagnostics());
      // Asterisk's console is long: name the failures again where a CI log's tail shows them.
      console.error(failedTests(resultsFile));
    }
    return code;
  } finally {
    rmSync(resultsDir, { recursive: true, force: true });
    await started?.stop();
  }
}

interface JsonResults {
  testResults?: { name: string; assertionResults?: { fullName: string; status: string; failureMessages?: string[] }[] }[];
}

function failedTests(resultsFile: string): string {
  let results: JsonResults;
  try {
    results = JSON.parse(readFileSync(resultsFile, 'utf8')) as JsonResults;
  } catch {
    return 'integration: failed (vitest wrote no results; see its output above)';
  }
  const lines = (results.testResults ?? []).flatMap((file) =>
    (file.assertionResults ?? [])
      .filter((test) => test.status === 'failed')
      .map((test) => {
        const message = (test.failureMessages?.[0] ?? '').split('\n')[0];
        return `  ${file.name.slice(root.length)} > ${test.fullName}\n    ${message}`;
      }),
  );
  return ['integration: failed tests:', ...(lines.length > 0 ? lines : ['  (none reported: a hook or the run itself failed)'])].join('\n');
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('integration:', err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
