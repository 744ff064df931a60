// `npm run bench:asterisk`: transfer latency on a real Asterisk with SIPp
// phones, the service beside a plain sequential ARI application, in the same
// run. Starts its own Asterisk (as the integration suite does: a local
// install, a copy of asterisk-config/, free ports), then, in rounds that
// alternate the two subjects so that the machine's drift hits both, plays
// attended and blind transfers and reads each one's latency from the
// transferring phone's own time stamps. Prints tables; see BENCHMARKS.md.
//
//   BENCH_TRANSFERS=20   measured transfers per kind and subject
//   BENCH_ROUNDS=4       turns each subject takes (its process restarted each time)
//   BENCH_WARMUP=1       unmeasured transfers per kind at the start of each turn
//   BENCH_KINDS=attended,blind
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findAsterisk, LocalAsterisk } from '../../test/integration/local-asterisk.js';
import { fixed } from '../stats.js';
import { AriHttp } from './ari-http.js';
import { guard, installExitGuard, stopAll, stopRequested } from './exit-guard.js';
import { latencyTable, ratioLines, timelineTable, type Results, type Sample } from './report.js';
import { PlainSubject, ServiceSubject, SUBJECT_LABEL, type Subject, type SubjectName } from './subjects.js';
import { PhonePool } from './phone-pool.js';
import { playTransfer, type TransferKind } from './transfer-call.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

function intFromEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  const n = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be a whole number from ${min} to ${max}`);
  return n;
}

const TRANSFERS = intFromEnv('BENCH_TRANSFERS', 20, 1, 1000);
const ROUNDS = intFromEnv('BENCH_ROUNDS', 4, 1, 100);
const WARMUP = intFromEnv('BENCH_WARMUP', 1, 0, 20);
const KINDS = (process.env.BENCH_KINDS ?? 'attended,blind').split(',').map((s) => s.trim()) as TransferKind[];
if (KINDS.length === 0 || KINDS.some((k) => k !== 'attended' && k !== 'blind')) throw new Error('BENCH_KINDS: attended, blind');
/** Each turn watches its subject idle after the warm-up: 6 slices of 500 ms. */
const IDLE_SLICES = 6;
const IDLE_SLICE_MS = 500;
/** The run stops when this many transfers in a row failed: something is broken, not slow. */
const MAX_FAILURES_IN_A_ROW = 3;

function progress(line: string): void {
  process.stderr.write(`  … ${line}\n`);
}

function run(command: string, args: string[]): string {
  const out = spawnSync(command, args, { cwd: root, encoding: 'utf8', timeout: 10_000 });
  return out.error ? '' : `${out.stdout ?? ''}${out.stderr ?? ''}`.trim();
}

function header(asteriskVersion: string): string {
  const cpus = os.cpus();
  const models = [...new Set(cpus.map((c) => c.model.trim()))].join(', ');
  const commit = run('git', ['rev-parse', '--short', 'HEAD']) || 'unknown';
  const dirty = run('git', ['status', '--porcelain', '--untracked-files=no']) ? ' + uncommitted changes' : '';
  const sipp = /SIPp v[^\s,-]+/.exec(run('sipp', ['-v']))?.[0] ?? 'SIPp';
  return [
    'ari-transfer on a real Asterisk: REFER sent → NOTIFY 200 received, at the transferring SIPp phone (its own time stamps), ms',
    `machine: ${os.type()} ${os.release()} ${os.arch()}; ${cpus.length} × ${models}; ${fixed(os.totalmem() / 2 ** 30, 1)} GiB RAM`,
    `Asterisk ${asteriskVersion}; ${sipp}; node ${process.version}; commit ${commit}${dirty}; ${new Date().toISOString()}`,
    `${TRANSFERS} measured transfers per kind and subject in ${ROUNDS} alternating turns, ${WARMUP} warm-up per kind at each turn's start`,
    `load average (1, 5, 15 min) at start: ${loadavg()}`,
  ].join('\n');
}

function loadavg(): string {
  return os
    .loadavg()
    .map((l) => fixed(l, 2))
    .join(', ');
}

/** Measured transfers per kind in turn `round`: TRANSFERS spread over the rounds. */
function perRound(round: number): number {
  return Math.floor(TRANSFERS / ROUNDS) + (round < TRANSFERS % ROUNDS ? 1 : 0);
}

/** Asterisk's pid from its pid file: the last-resort kill when we cannot wait for "core stop now". */
function killAsteriskNow(pidFile: string): void {
  try {
    process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGKILL');
  } catch {
    // Not running (any more).
  }
}

/** The phones' traces went to a scratch directory of our own (TMPDIR): remove them, and it if empty. */
function removeScratch(dir: string): void {
  for (const entry of readdirSync(dir)) if (entry.startsWith('sipp-')) rmSync(join(dir, entry), { recursive: true, force: true });
  try {
    rmdirSync(dir);
  } catch {
    // Something was kept there on purpose (an Asterisk core dump, reported by LocalAsterisk).
  }
}

async function main(): Promise<number> {
  installExitGuard();
  if (spawnSync('sipp', ['-v']).error) {
    console.error('bench:asterisk: sipp not found; install it with: apt-get install sip-tester');
    return 1;
  }
  const install = findAsterisk();
  if (typeof install === 'string') {
    console.error(`bench:asterisk: ${install}; set ASTERISK_PREFIX to an Asterisk 22.8+ install (see README, Integration tests)`);
    return 1;
  }

  const scratch = mkdtempSync(join(os.tmpdir(), 'ari-transfer-bench-'));
  // SippPhone and LocalAsterisk write under os.tmpdir(): here, one directory to clean.
  process.env.TMPDIR = scratch;
  guard('scratch files', () => removeScratch(scratch), () => removeScratch(scratch));

  progress(`starting ${install.binary} with a copy of asterisk-config/ ...`);
  const asterisk = await LocalAsterisk.start(install, join(root, 'asterisk-config'));
  guard('Asterisk', () => asterisk.dispose(), () => killAsteriskNow(asterisk.env.ASTERISK_PID_FILE!));
  const phones = new PhonePool();
  guard('SIPp phones', () => phones.close(), () => phones.close());
  const target = asterisk.target;
  const ari = new AriHttp(target.ariUrl, target.username, target.password);
  const info = await ari.get<{ system?: { version?: string } }>('/asterisk/info');
  console.log(header(info.system?.version ?? 'unknown'));

  const subjects: Subject[] = [new ServiceSubject(target), new PlainSubject(target)];
  for (const s of subjects) guard(SUBJECT_LABEL[s.name], () => s.stop(), () => s.killNow());

  const results: Results = new Map(KINDS.map((k) => [k, new Map<SubjectName, Sample[]>(subjects.map((s) => [s.name, []]))]));
  let failuresInARow = 0;

  async function measure(subject: Subject, kind: TransferKind, label: string): Promise<Sample> {
    const before = subject.cpuMs();
    const started = performance.now();
    const outcome = await playTransfer(kind, target, ari, phones);
    const after = subject.cpuMs();
    const windowMs = performance.now() - started;
    if (outcome.problem) {
      progress(`${label}: FAILED: ${outcome.problem}\n${subject.diagnostics()}`);
      if (++failuresInARow >= MAX_FAILURES_IN_A_ROW) throw new Error(`${MAX_FAILURES_IN_A_ROW} transfers in a row failed; stopping`);
    } else {
      failuresInARow = 0;
      progress(`${label}: ${fixed(outcome.latencyMs!, 1)} ms`);
    }
    const cpuMs = before !== undefined && after !== undefined ? after - before : undefined;
    return { outcome, cpu: cpuMs === undefined ? undefined : { ms: cpuMs, windowMs, idleMsPerS: undefined }, timeline: undefined };
  }

  /**
   * CPU ms per second the subject uses doing nothing (its timers, pings,
   * metrics), to tell its cost per call from its cost per hour: the least of
   * short slices, so that the garbage collections V8 runs a few seconds after
   * activity count for the calls that made the garbage.
   */
  async function idleCpu(subject: Subject): Promise<number | undefined> {
    const rates: number[] = [];
    let before = subject.cpuMs();
    for (let i = 0; i < IDLE_SLICES; i++) {
      await new Promise((r) => setTimeout(r, IDLE_SLICE_MS));
      const after = subject.cpuMs();
      if (before === undefined || after === undefined) return undefined;
      rates.push(((after - before) * 1000) / IDLE_SLICE_MS);
      before = after;
    }
    return Math.min(...rates);
  }

  for (let round = 0; round < ROUNDS; round++) {
    // Alternate who goes first, so that neither always follows the other's restart.
    const order = round % 2 === 0 ? subjects : [...subjects].reverse();
    for (const subject of order) {
      const name = SUBJECT_LABEL[subject.name];
      progress(`turn ${round + 1}/${ROUNDS}: ${name}`);
      if (stopRequested()) throw new Error('stopped');
      await subject.start();
      // A signal during the start: the clean-up may have missed this process.
      if (stopRequested()) {
        await subject.stop();
        throw new Error('stopped');
      }
      for (let w = 0; w < WARMUP; w++) for (const kind of KINDS) await measure(subject, kind, `${name} ${kind} warm-up`);
      const idleMsPerS = await idleCpu(subject);
      const measured: Sample[] = [];
      for (let i = 0; i < perRound(round); i++) {
        for (const kind of KINDS) measured.push(await measure(subject, kind, `${name} ${kind}`));
      }
      const timelines = await subject.timelines();
      await subject.stop();
      for (const sample of measured) {
        if (sample.cpu) sample.cpu.idleMsPerS = idleMsPerS;
        sample.timeline = sample.outcome.callId === undefined ? undefined : timelines.get(sample.outcome.callId);
        results.get(sample.outcome.kind)!.get(subject.name)!.push(sample);
      }
    }
  }

  console.log(`\n${latencyTable(results)}`);
  console.log(`\n${ratioLines(results).join('\n')}`);
  console.log(
    '\nn: transfers with a NOTIFY 200 (failed: without); latency, p90, min, max: REFER sent → NOTIFY 200 received; 100 Trying: REFER sent → NOTIFY 100 received.' +
      '\nCPU ms/call: median CPU time of the subject process (all threads, /proc/<pid>/task/*/schedstat) from the phones\' start to a clean Asterisk' +
      '\n(routing the calls, the transfer, the hang-ups; about 4 s); idle: CPU ms per second it uses doing nothing (the least of six 500 ms slices after each turn\'s warm-up);' +
      '\nabove idle: median of (CPU of the call − idle × its duration).',
  );
  console.log(`\nwhere the time goes: medians, ms after the REFER left the phone\n${timelineTable(results)}`);
  console.log(
    'event: the subject took the ChannelTransfer up (service: its transfer started, to the ms); 100 sent, 200 sent, moved: the REST call returned' +
      '\n(service: its step history, to the ms; moved = its move or join step); dialled: plain: the originate returned, service: the dial started;' +
      '\nanswered: the target leg entered Stasis (plain only).',
  );
  console.log(`\nload average (1, 5, 15 min) at the end: ${loadavg()}`);
  return 0;
}

main()
  .catch((err: unknown) => {
    console.error(`bench:asterisk: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  })
  .then(async (code) => {
    await stopAll();
    process.exit(code);
  });
