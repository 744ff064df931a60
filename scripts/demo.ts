// `npm run demo`: the service against the ARI emulator (no Asterisk needed),
// playing an attended and two blind transfers between four phones, each
// shown as a ladder built from what the emulator observed.
//
// Exit code 0 when every scenario ended as expected, 1 otherwise.
// NO_COLOR=1 for plain text; DEMO_VERBOSE=1 (or LOG_LEVEL) for the
// service's JSON logs on stderr.
import { formatStep, heading, makeStyle, wantsColor, type Style } from './demo/format.js';
import { resultLine } from './demo/ladder.js';
import { PHONES } from './demo/phones.js';
import { describeExpectation, runScenario, SCENARIOS, type ScenarioOutcome } from './demo/scenarios.js';
import { startStage } from './demo/stage.js';

function print(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function printOutcome(n: number, o: ScenarioOutcome, style: Style): void {
  print(heading(`${n}. ${o.scenario.title}`, style));
  print(` ${style.dim(o.scenario.story)}`);
  for (const step of o.ladder.steps) print(formatStep(step, style));
  print(` ${style.bold(resultLine(o.ladder))}`);
  const s = o.summary;
  const verdict = s ? ` — transfer ${s.result}${s.reason ? ` (${s.reason})` : ''} in ${s.durationMs} ms` : '';
  if (o.problems.length === 0) print(` ${style.green('✓')} as expected: ${describeExpectation(o.scenario.expect)}${style.dim(verdict)}`);
  else for (const p of o.problems) print(` ${style.red('✗')} ${style.red(`${o.scenario.title}: ${p}`)}`);
  print();
}

async function main(): Promise<number> {
  const style = makeStyle(wantsColor(process.stdout, process.env));
  const verbose = process.env.DEMO_VERBOSE === '1';
  const logLevel = process.env.LOG_LEVEL || (verbose ? 'info' : 'silent');

  const stage = await startStage({ logLevel, logDestination: process.stderr });
  let failed = 0;
  try {
    print(style.bold('ari-transfer demo') + style.dim(` — ARI emulator at ${stage.emu.url}, service with ROUTING=dial, dial template PJSIP/{exten}`));
    print(style.dim(` phones: ${PHONES.map((p) => `${p.name} ${p.ext}`).join(', ')} (PJSIP endpoints named by extension)`));
    print();
    for (const [i, scenario] of SCENARIOS.entries()) {
      const outcome = await runScenario(stage, scenario);
      printOutcome(i + 1, outcome, style);
      if (outcome.problems.length) failed++;
    }
  } finally {
    await stage.close();
  }
  if (failed === 0) print(style.green(`All ${SCENARIOS.length} scenarios ended as expected.`));
  else print(style.red(`${failed} of ${SCENARIOS.length} scenarios did not end as expected.`));
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
