// (a) latency of one transfer at a time, (b) throughput with many in flight.
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { AriRestClient } from '../src/ari/rest-client.js';
import { EmulatorThread } from './emulator-thread.js';
import { ARI_PASSWORD, ARI_USER, type Barrier, type ReferBatchResult, type TransferKind } from './protocol.js';
import { makeSubject, waitFor, type Subject, type SubjectName } from './subjects.js';

async function withSubject<T>(name: SubjectName, fn: (thread: EmulatorThread, subject: Subject) => Promise<T>): Promise<T> {
  const { thread, url } = await EmulatorThread.start();
  const subject = makeSubject(name, url);
  try {
    await subject.start();
    return await fn(thread, subject);
  } finally {
    await subject.stop();
    await thread.close();
  }
}

function sawSetup(subject: Subject, barrier: Barrier, timeoutMs = 10_000): Promise<void> {
  return waitFor(() => subject.sawSetup(barrier), `${subject.name} to see the calls set up`, timeoutMs);
}

export interface LatencyResult {
  latencyMs: number[];
  tryingMs: number[];
  /** Transfers that did not end with 200, or that the subject did not complete. */
  failures: number;
}

/** A subject with its own emulator, kept open across rounds. */
interface Session {
  name: SubjectName;
  thread: EmulatorThread;
  subject: Subject;
  transfers: number;
  result: LatencyResult;
}

async function openSession(name: SubjectName): Promise<Session> {
  const { thread, url } = await EmulatorThread.start();
  const subject = makeSubject(name, url);
  await subject.start();
  return { name, thread, subject, transfers: 0, result: { latencyMs: [], tryingMs: [], failures: 0 } };
}

/**
 * One transfer at a time: set one call up (after hanging up what the last
 * one left), wait until the subject has seen it all, REFER, wait until the
 * subject has finished (hang-ups included), next.
 */
async function sequentialTransfers(s: Session, kind: TransferKind, count: number, record: boolean): Promise<void> {
  const { thread, subject } = s;
  for (let i = 0; i < count; i++) {
    const { barrier } = await thread.request({ op: 'setup', kind, count: 1, cleanFirst: true });
    await sawSetup(subject, barrier);
    const r = await thread.request({ op: 'refer', count: 1, concurrency: 1, deadlineMs: 10_000 });
    if (r.terminated !== 1) throw new Error(`${subject.name}: REFER not terminated (${JSON.stringify(r.codes)})`);
    const n = ++s.transfers;
    await waitFor(() => subject.finished === n, `${subject.name} to finish transfer ${n}`);
    if (!record) continue;
    if (r.codes['200'] !== 1) s.result.failures++;
    s.result.latencyMs.push(...r.latencyMs);
    s.result.tryingMs.push(...r.tryingMs);
  }
}

/**
 * Every subject gets its own emulator and `warmup` untimed transfers; then
 * `rounds` rounds, each giving every subject `samples / rounds` transfers in
 * turn, so that a noisy moment on the machine falls on all of them alike.
 */
export async function latency(
  names: SubjectName[],
  kind: TransferKind,
  warmup: number,
  samples: number,
  rounds: number,
): Promise<Map<SubjectName, LatencyResult>> {
  const sessions: Session[] = [];
  try {
    for (const name of names) sessions.push(await openSession(name));
    for (const s of sessions) await sequentialTransfers(s, kind, warmup, false);
    for (let round = 0; round < rounds; round++) {
      const count = Math.floor(samples / rounds) + (round < samples % rounds ? 1 : 0);
      for (const s of sessions) await sequentialTransfers(s, kind, count, true);
    }
    for (const s of sessions) s.result.failures += s.subject.failed;
    return new Map(sessions.map((s) => [s.name, s.result]));
  } finally {
    for (const s of sessions) {
      await s.subject.stop();
      await s.thread.close();
    }
  }
}

export interface ThroughputResult extends ReferBatchResult {
  concurrency: number;
  /** Transfers the subject finished (its last REST call returned) by the end. */
  finished: number;
  subjectFailed: number;
  /** Event-loop utilisation of the main thread (the subject) and of the emulator's thread, over the batch. */
  subjectBusy: number;
  emulatorBusy: number;
  /** Main-thread busy time per transfer, ms. */
  subjectCpuPerTransferMs: number;
  /** Emulator-thread busy time per transfer, ms. */
  emulatorCpuPerTransferMs: number;
  /** CPU time (user + system) of the whole process, both threads, per transfer, ms. */
  processCpuPerTransferMs: number;
}

/**
 * `warmup + total` calls set up first; then a closed loop keeps `concurrency`
 * REFERs pending (a new one as soon as one is terminated) until all were
 * sent: `warmup` of them untimed, then `total` timed.
 */
export function throughput(
  name: SubjectName,
  kind: TransferKind,
  concurrency: number,
  total: number,
  warmup: number,
): Promise<ThroughputResult> {
  return withSubject(name, async (thread, subject) => {
    let barrier: Barrier | undefined;
    for (let made = 0; made < warmup + total; made += 250) {
      ({ barrier } = await thread.request({ op: 'setup', kind, count: Math.min(250, warmup + total - made), cleanFirst: false }));
    }
    await sawSetup(subject, barrier!, 120_000);
    const warm = await thread.request({ op: 'refer', count: warmup, concurrency, deadlineMs: 120_000 });
    await waitFor(() => subject.finished >= warm.sent, `${subject.name} to finish the warm-up transfers`, 30_000);
    const before = { finished: subject.finished, failed: subject.failed };
    const worker = thread.performance;
    const mainStart = performance.eventLoopUtilization();
    const workerStart = worker.eventLoopUtilization();
    const cpuStart = process.cpuUsage();
    const r = await thread.request({ op: 'refer', count: total, concurrency, deadlineMs: 120_000 });
    const mainElu: EventLoopUtilization = performance.eventLoopUtilization(mainStart);
    const workerElu: EventLoopUtilization = worker.eventLoopUtilization(workerStart);
    const cpu = process.cpuUsage(cpuStart);
    // The subject may still be hanging up the last transferers.
    await waitFor(() => subject.finished - before.finished >= r.sent, `${subject.name} to finish every transfer`, 30_000).catch(() => undefined);
    return {
      ...r,
      concurrency,
      finished: subject.finished - before.finished,
      subjectFailed: subject.failed - before.failed,
      subjectBusy: mainElu.utilization,
      emulatorBusy: workerElu.utilization,
      subjectCpuPerTransferMs: r.terminated > 0 ? mainElu.active / r.terminated : Number.NaN,
      emulatorCpuPerTransferMs: r.terminated > 0 ? workerElu.active / r.terminated : Number.NaN,
      processCpuPerTransferMs: r.terminated > 0 ? (cpu.user + cpu.system) / 1000 / r.terminated : Number.NaN,
    };
  });
}

export interface RoundTripResult {
  fetchMs: number[];
  restClientMs: number[];
}

/** One ARI request on loopback (GET /ari/bridges, an empty list), back to back: fetch, then the service's REST client. */
export async function requestRoundTrip(warmup: number, samples: number): Promise<RoundTripResult> {
  const { thread, url } = await EmulatorThread.start();
  try {
    const auth = `Basic ${Buffer.from(`${ARI_USER}:${ARI_PASSWORD}`).toString('base64')}`;
    const rest = new AriRestClient({ url, username: ARI_USER, password: ARI_PASSWORD, timeoutMs: 5000 });
    const viaFetch = async () => {
      const res = await fetch(`${url}/ari/bridges`, { headers: { Authorization: auth } });
      await res.arrayBuffer();
    };
    const viaRest = () => rest.listBridges();
    const out: RoundTripResult = { fetchMs: [], restClientMs: [] };
    for (const [fn, into] of [
      [viaFetch, out.fetchMs],
      [viaRest, out.restClientMs],
    ] as const) {
      for (let i = 0; i < warmup + samples; i++) {
        const t0 = performance.now();
        await fn();
        if (i >= warmup) into.push(performance.now() - t0);
      }
    }
    return out;
  } finally {
    await thread.close();
  }
}
