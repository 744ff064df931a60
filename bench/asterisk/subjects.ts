// The two ARI applications measured on the real Asterisk, each a child
// process started and stopped by the benchmark, one at a time (one
// Stasis application, one owner):
//  - service: ari-transfer as production runs it (test/integration's
//    ServiceProcess: `node --import tsx src/main.ts`), ROUTING=dial as the
//    integration suite uses it, LOG_LEVEL=warn;
//  - plain: plain-main.ts, the sequential ws + fetch application.
// Each can say when it did what for a given transfer, for the report.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { AsteriskTarget } from '../../test/integration/asterisk-target.js';
import { ServiceProcess } from '../../test/integration/service-process.js';
import type { PlainTimeline } from './plain-app.js';
import { processCpuMs } from './process-cpu.js';

export type SubjectName = 'service' | 'plain';

export const SUBJECT_LABEL: Record<SubjectName, string> = {
  service: 'service',
  plain: 'plain (ws + fetch)',
};

/** Steps of a transfer a subject can time; wall-clock ms. */
export type Mark = 'progress100' | 'dialled' | 'targetAnswered' | 'moved' | 'progress200';

export interface SubjectTimeline {
  /** When the subject took the ChannelTransfer up. */
  eventAt: number;
  marks: Partial<Record<Mark, number>>;
}

export interface Subject {
  readonly name: SubjectName;
  /** Starts the process; resolves once it is connected to ARI and ready for calls. */
  start(): Promise<void>;
  /** Stops it (SIGTERM, then SIGKILL); idempotent. */
  stop(): Promise<void>;
  /** Kills it at once: for exit handlers, where nothing can be awaited. */
  killNow(): void;
  /** CPU ms its process has used so far, undefined when not running. */
  cpuMs(): number | undefined;
  /** What it did for each transfer, by the SIP Call-ID of the REFER's dialog, as far as it can tell (read before stop()). */
  timelines(): Promise<Map<string, SubjectTimeline>>;
  /** Its last output, for a failure's message. */
  diagnostics(): string;
}

const root = fileURLToPath(new URL('../..', import.meta.url));
const START_DEADLINE_MS = 30_000;
const STOP_GRACE_MS = 15_000;

function ariEnv(t: AsteriskTarget): Record<string, string> {
  return { ARI_URL: t.ariUrl, ARI_USERNAME: t.username, ARI_PASSWORD: t.password, ARI_APP: t.app };
}

/** A TCP port free on loopback now (the kernel's pick), for the service's HTTP API. */
async function freeTcpPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no TCP port');
  return address.port;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class ServiceSubject implements Subject {
  readonly name = 'service';
  private process: ServiceProcess | undefined;

  constructor(private readonly target: AsteriskTarget) {}

  async start(): Promise<void> {
    // The HTTP port is picked just before the start: if another process takes it meanwhile, the service exits 1; try again.
    for (let attempt = 1; ; attempt++) {
      const service = ServiceProcess.start({
        ...ariEnv(this.target),
        ROUTING: 'dial',
        LOG_LEVEL: 'warn',
        // BENCH_REST_TRANSPORT=http measures the service with its REST requests over HTTP.
        ...(process.env.BENCH_REST_TRANSPORT ? { ARI_REST_TRANSPORT: process.env.BENCH_REST_TRANSPORT } : {}),
        HTTP_PORT: String(await freeTcpPort()),
      });
      this.process = service;
      const deadline = Date.now() + START_DEADLINE_MS;
      while (!(await service.ready())) {
        if (!service.running) break;
        if (Date.now() > deadline) {
          await service.kill();
          throw new Error(`the service did not become ready within ${START_DEADLINE_MS} ms\n${service.tail()}`);
        }
        await sleep(100);
      }
      if (service.running) return;
      const { code } = await service.exited;
      if (code !== 1 || attempt >= 3) throw new Error(`the service exited with code ${code} while starting\n${service.tail()}`);
    }
  }

  async stop(): Promise<void> {
    const service = this.process;
    if (!service?.running) return;
    service.signal('SIGTERM');
    const stopped = await Promise.race([service.exited.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
    if (!stopped) await service.kill();
  }

  killNow(): void {
    if (this.process?.running) this.process.signal('SIGKILL');
  }

  cpuMs(): number | undefined {
    return this.process?.running ? processCpuMs(this.process.pid) : undefined;
  }

  /** From GET /transfers: its own account of each finished transfer, steps stamped to the ms. */
  async timelines(): Promise<Map<string, SubjectTimeline>> {
    const out = new Map<string, SubjectTimeline>();
    const url = this.process?.apiUrl;
    if (!url || !this.process?.running) return out;
    try {
      const res = await fetch(`${url}/transfers`, { signal: AbortSignal.timeout(5000) });
      const body = (await res.json()) as { finished?: FinishedTransfer[] };
      for (const t of body.finished ?? []) {
        if (t.sourceCallId) out.set(t.sourceCallId, serviceTimeline(t));
      }
    } catch {
      // Only the report's breakdown needs it; the latency comes from the phones.
    }
    return out;
  }

  diagnostics(): string {
    return this.process?.tail(30) ?? '';
  }
}

interface FinishedTransfer {
  sourceCallId?: string | null;
  startedAt: string;
  steps?: { at: string; step: string; fields?: Record<string, unknown> }[];
}

/** The service's steps as marks: each step is recorded once its REST call returned ('dial' when the dial starts). */
function serviceTimeline(t: FinishedTransfer): SubjectTimeline {
  const marks: SubjectTimeline['marks'] = {};
  const first = (mark: Mark, at: string) => (marks[mark] ??= Date.parse(at));
  for (const s of t.steps ?? []) {
    if (s.step === 'progress' && s.fields?.sipfrag === 100) first('progress100', s.at);
    else if (s.step === 'progress' && s.fields?.sipfrag === 200) first('progress200', s.at);
    else if (s.step === 'dial') first('dialled', s.at);
    else if (s.step === 'move' || s.step === 'join') first('moved', s.at);
  }
  return { eventAt: Date.parse(t.startedAt), marks };
}

export class PlainSubject implements Subject {
  readonly name = 'plain';
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = '';
  private readonly reported = new Map<string, SubjectTimeline>();

  constructor(private readonly target: AsteriskTarget) {}

  async start(): Promise<void> {
    this.output = '';
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/asterisk/plain-main.ts'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', ...ariEnv(this.target) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('close', () => resolve()));
    let pending = '';
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        pending += d.toString();
        let newline: number;
        while ((newline = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          if (line === 'ready') resolve();
          else this.read(line);
        }
      });
      child.stderr.on('data', (d: Buffer) => (this.output += d.toString()));
      child.once('close', (code) => reject(new Error(`the plain application exited with code ${code} while starting\n${this.output}`)));
    });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the plain application did not connect within ${START_DEADLINE_MS} ms\n${this.output}`)), START_DEADLINE_MS);
    });
    try {
      await Promise.race([ready, deadline]);
    } catch (err) {
      this.killNow();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const stopped = await Promise.race([this.exited.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
    if (!stopped) {
      child.kill('SIGKILL');
      await this.exited;
    }
  }

  killNow(): void {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }

  cpuMs(): number | undefined {
    const child = this.child;
    return child && child.exitCode === null ? processCpuMs(child.pid) : undefined;
  }

  async timelines(): Promise<Map<string, SubjectTimeline>> {
    return new Map(this.reported);
  }

  diagnostics(): string {
    return this.output.split('\n').slice(-30).join('\n');
  }

  private read(line: string): void {
    try {
      const { timeline } = JSON.parse(line) as { timeline?: PlainTimeline };
      if (!timeline) return;
      if (timeline.error) this.output += `transfer ${timeline.callId}: ${timeline.error}\n`;
      const { progress100, originated, targetAnswered, moved, progress200 } = timeline.marks;
      this.reported.set(timeline.callId, { eventAt: timeline.eventAt, marks: { progress100, dialled: originated, targetAnswered, moved, progress200 } });
    } catch {
      this.output += `${line}\n`;
    }
  }
}
