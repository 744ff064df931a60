// The tables `npm run bench:asterisk` prints: latency per kind and subject,
// the service/plain ratio of the medians, CPU per call, and where each
// subject's time went.
import { fixed, percentile, table } from '../stats.js';
import { SUBJECT_LABEL, type Mark, type SubjectName, type SubjectTimeline } from './subjects.js';
import type { TransferKind, TransferOutcome } from './transfer-call.js';

/** Everything measured for one subject and one kind of transfer. */
export interface Sample {
  outcome: TransferOutcome;
  /** CPU the subject's process used from the phones' start to a clean Asterisk. */
  cpu: { ms: number; windowMs: number; idleMsPerS: number | undefined } | undefined;
  timeline: SubjectTimeline | undefined;
}

export type Results = Map<TransferKind, Map<SubjectName, Sample[]>>;

const median = (xs: number[]) => percentile(xs, 50);
const defined = (xs: (number | undefined)[]) => xs.filter((x): x is number => x !== undefined);

function latencies(samples: Sample[]): number[] {
  return defined(samples.map((s) => s.outcome.latencyMs));
}

export function latencyTable(results: Results): string {
  const rows: string[][] = [];
  for (const [kind, bySubject] of results) {
    for (const [subject, samples] of bySubject) {
      const ms = latencies(samples);
      const cpu = defined(samples.map((s) => s.cpu?.ms));
      const idle = defined(samples.map((s) => s.cpu?.idleMsPerS));
      const idleRate = Math.min(...idle);
      const aboveIdle = idle.length === 0 ? [] : defined(samples.map((s) => (s.cpu ? s.cpu.ms - (idleRate * s.cpu.windowMs) / 1000 : undefined)));
      rows.push([
        kind,
        SUBJECT_LABEL[subject],
        String(ms.length),
        String(samples.length - ms.length),
        fixed(median(ms), 1),
        fixed(percentile(ms, 90), 1),
        fixed(Math.min(...ms), 1),
        fixed(Math.max(...ms), 1),
        fixed(median(defined(samples.map((s) => s.outcome.tryingMs))), 1),
        fixed(median(cpu), 0),
        fixed(Math.min(...idle), 1),
        fixed(median(aboveIdle), 0),
      ]);
    }
  }
  return table(['transfer', 'subject', 'n', 'failed', 'median', 'p90', 'min', 'max', '100 Trying median', 'CPU ms/call', 'idle ms/s', 'above idle'], rows);
}

/** "attended: service / plain = 1.23 (median 12.1 / 9.8 ms)". */
export function ratioLines(results: Results): string[] {
  const lines: string[] = [];
  for (const [kind, bySubject] of results) {
    const service = median(latencies(bySubject.get('service') ?? []));
    const plain = median(latencies(bySubject.get('plain') ?? []));
    lines.push(`${kind}: service / plain = ${fixed(service / plain, 2)} (medians ${fixed(service, 1)} / ${fixed(plain, 1)} ms)`);
  }
  return lines;
}

const MARKS: { mark: Mark | 'event' | 'notify200'; label: string }[] = [
  { mark: 'event', label: 'event' },
  { mark: 'progress100', label: '100 sent' },
  { mark: 'dialled', label: 'dialled' },
  { mark: 'targetAnswered', label: 'answered' },
  { mark: 'moved', label: 'moved' },
  { mark: 'progress200', label: '200 sent' },
  { mark: 'notify200', label: 'NOTIFY 200 at phone' },
];

/** Medians of when each step was done, in ms after the REFER left the phone. */
export function timelineTable(results: Results): string {
  const rows: string[][] = [];
  for (const [kind, bySubject] of results) {
    for (const [subject, samples] of bySubject) {
      const offsets = (pick: (s: Sample) => number | undefined) =>
        defined(
          samples.map((s) => {
            const at = pick(s);
            const from = s.outcome.referSentAt;
            return s.outcome.latencyMs === undefined || at === undefined || from === undefined ? undefined : at - from;
          }),
        );
      const cells = MARKS.map(({ mark }) => {
        const xs =
          mark === 'notify200'
            ? defined(samples.map((s) => s.outcome.latencyMs))
            : offsets((s) => (mark === 'event' ? s.timeline?.eventAt : s.timeline?.marks[mark]));
        return xs.length > 0 ? fixed(median(xs), 1) : '-';
      });
      rows.push([kind, SUBJECT_LABEL[subject], ...cells]);
    }
  }
  return table(['transfer', 'subject', ...MARKS.map((m) => m.label)], rows);
}
