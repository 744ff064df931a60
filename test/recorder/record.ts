// Records ARI traces from a real Asterisk for the emulator's conformance test.
//
//   node --import tsx test/recorder/record.ts [--out DIR] [--prefix ASTERISK_PREFIX] [scenario ...]
//
// For each scenario: a fresh Asterisk (asterisk.ts, own ports), the scenario's
// phones and ARI calls, then the files in DIR (default test/fixtures/traces):
//   <name>.events.jsonl            every event of the `ari-transfer` socket (subscribeAll), verbatim
//   <name>.<socket>.events.jsonl   other sockets' events (multi-app)
//   <name>.rest.jsonl              every REST call: sent, received, method, path, query, body, status, response
//   <name>.steps.txt               the driver's log with local times, and the FACT lines
//   <name>.<phone>.sipp-messages.txt  sipp's message log of each phone
//   <name>.asterisk.txt            Asterisk's console lines during the scenario (MOH, hangups)
// Machine paths are replaced by <recorder>, <asterisk-prefix> and <repo>.

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AriClient, ScenarioLog } from './ari-log.js';
import { ARI_PASSWORD, ARI_USER, AsteriskInstance } from './asterisk.js';
import { ScenarioContext, type Scenario } from './context.js';
import { SCENARIOS } from './scenarios/index.js';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));

interface Args {
  out: string;
  prefix: string;
  names: string[];
}

function parseArgs(argv: string[]): Args {
  const args: Args = { out: join(REPO, 'test/fixtures/traces'), prefix: '/opt/ari-transfer-asterisk', names: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--out') args.out = resolve(argv[++i] ?? '');
    else if (a === '--prefix') args.prefix = resolve(argv[++i] ?? '');
    else if (a === '--list') {
      for (const s of SCENARIOS) console.log(`${s.name.padEnd(28)} ${s.about}`);
      process.exit(0);
    } else args.names.push(a);
  }
  return args;
}

async function record(s: Scenario, args: Args): Promise<boolean> {
  const scratch = mkdtempSync(join(tmpdir(), `ari-recorder-${s.name}-`));
  const asterisk = await AsteriskInstance.start({ prefix: args.prefix, configDir: join(REPO, 'asterisk-config') });
  const log = new ScenarioLog();
  const ari = new AriClient(asterisk.ariUrl, ARI_USER, ARI_PASSWORD, log);
  const ctx = new ScenarioContext(s.name, ari, log, asterisk, scratch);
  const consoleFrom = asterisk.consoleText().length;
  log.step(`SCENARIO ${s.name}: ${s.about}`);
  log.step(`ASTERISK ${(await ari.call('GET', '/asterisk/info', { only: 'system' })).body ? 'up' : '?'}`);
  let ok = true;
  try {
    await s.run(ctx);
  } catch (err) {
    ok = false;
    log.step(`ERROR ${(err as Error).stack ?? String(err)}`);
    console.error(`${s.name}: FAILED: ${(err as Error).message}`);
    for (const p of ctx.phones) console.error(p.tail());
  }
  try {
    await ctx.cleanUp();
    await ctx.sleep(300);
  } catch {
    /* best effort */
  }
  for (const p of ctx.phones) p.kill();
  await Promise.all(ctx.rtp.map((c) => c.close()));
  await ari.closeAll();
  const consoleText = asterisk.consoleText().slice(consoleFrom);
  await asterisk.stop();

  const clean = (text: string): string =>
    text
      .split(asterisk.base)
      .join('<recorder>')
      .split(scratch)
      .join('<recorder>/out')
      .split(args.prefix)
      .join('<asterisk-prefix>')
      .split(REPO)
      .join('<repo>');
  mkdirSync(args.out, { recursive: true });
  const write = (file: string, text: string) => writeFileSync(join(args.out, file), clean(text));
  write(`${s.name}.events.jsonl`, log.events.map((l) => `${l}\n`).join(''));
  for (const [label, lines] of log.otherEvents) write(`${s.name}.${label}.events.jsonl`, lines.map((l) => `${l}\n`).join(''));
  write(`${s.name}.rest.jsonl`, log.rest.map((r) => `${JSON.stringify(r)}\n`).join(''));
  write(`${s.name}.steps.txt`, `${log.steps.join('\n')}\n`);
  write(`${s.name}.asterisk.txt`, consoleText.replace(/\x1b\[[0-9;]*m/g, ''));
  for (const f of readdirSync(scratch)) write(f, readFileSync(join(scratch, f), 'utf8'));
  rmSync(scratch, { recursive: true, force: true });
  rmSync(asterisk.base, { recursive: true, force: true });
  console.log(`${s.name}: ${ok ? 'recorded' : 'FAILED (partial files written)'}`);
  for (const f of ctx.facts) console.log(`  - ${f}`);
  return ok;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const chosen = args.names.length ? SCENARIOS.filter((s) => args.names.includes(s.name)) : SCENARIOS;
  const unknown = args.names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length) throw new Error(`unknown scenario(s): ${unknown.join(', ')} (--list shows them)`);
  let failed = 0;
  for (const s of chosen) if (!(await record(s, args))) failed++;
  process.exitCode = failed ? 1 : 0;
}

await main();
