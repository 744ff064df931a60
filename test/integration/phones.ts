// SIPp phones (Debian package sip-tester) playing the scenarios in sipp/.
// Each phone is one sipp process with its message trace in a temp folder.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSippMessages, type SipMessage } from './sipp-messages.js';

const SCENARIOS = new URL('./sipp/', import.meta.url).pathname;

export interface SipTarget {
  host: string;
  port: number;
}

export interface PhoneOptions {
  /** Scenario file in sipp/, e.g. 'uas_answer.xml'. */
  scenario: string;
  /** The From user: the extension the phone plays (1001..1004). */
  phone: string;
  /** Local SIP port (5061..5064; 5072 for 1002's consultation call). */
  port: number;
  /** Extension to call, for calling scenarios. */
  call?: string;
  keys?: Record<string, string>;
  /** 3PCC socket shared by the two halves of an attended-transfer phone. */
  threePcc?: string;
  /** Calls the phone makes or answers before its scenario ends (sipp -m, and -l: all may be up at once); default 1. */
  calls?: number;
  /** New calls per second a calling phone places (sipp -r); sipp's default (10) otherwise. */
  rate?: number;
}

export class SippPhone {
  readonly exited: Promise<number | null>;
  private readonly dir: string;
  private output = '';
  /** Exit code once the phone's scenario ended (sipp: 0 = every call succeeded). */
  exitCode: number | null = null;
  done = false;
  /** Stopped by us before its scenario ended. */
  killed = false;

  private constructor(
    readonly options: PhoneOptions,
    private readonly child: ChildProcess,
    dir: string,
  ) {
    this.dir = dir;
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((resolve) =>
      child.on('close', (code) => {
        this.exitCode = code;
        this.done = true;
        resolve(code);
      }),
    );
  }

  static start(options: PhoneOptions, target: SipTarget): SippPhone {
    const dir = mkdtempSync(join(tmpdir(), `sipp-${options.phone}-${options.port}-`));
    const args = [
      '-sf', join(SCENARIOS, options.scenario),
      '-key', 'phone', options.phone,
      ...Object.entries(options.keys ?? {}).flatMap(([k, v]) => ['-key', k, v]),
      ...(options.call ? ['-s', options.call] : []),
      ...(options.threePcc ? ['-3pcc', options.threePcc] : []),
      '-i', '127.0.0.1',
      '-p', String(options.port),
      '-m', String(options.calls ?? 1),
      ...(options.calls ? ['-l', String(options.calls)] : []),
      ...(options.rate ? ['-r', String(options.rate)] : []),
      // Answer stray in-dialog requests instead of aborting (see sipp-phones/README).
      '-aa',
      '-nostdin',
      '-timeout', '60s',
      '-timeout_error',
      '-trace_msg',
      '-message_file', join(dir, 'messages.log'),
      '-trace_err',
      '-error_file', join(dir, 'errors.log'),
      `${target.host}:${target.port}`,
    ];
    return new SippPhone(options, spawn('sipp', args, { stdio: ['ignore', 'pipe', 'pipe'] }), dir);
  }

  get port(): number {
    return this.options.port;
  }

  messages(): SipMessage[] {
    return parseSippMessages(this.trace());
  }

  /** sipp's raw message trace (-trace_msg): each message after a line of dashes and its time. */
  trace(): string {
    const file = join(this.dir, 'messages.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  /** What to show when a scenario fails: sipp's errors and its last output. */
  diagnostics(): string {
    const errors = join(this.dir, 'errors.log');
    const err = existsSync(errors) ? readFileSync(errors, 'utf8').slice(-2000) : '';
    const ladder = this.messages()
      .map((m) => `${m.direction === 'sent' ? '->' : '<-'} ${m.method ?? m.status}${m.cseqMethod && m.method === undefined ? ` (${m.cseqMethod})` : ''}${m.method === 'NOTIFY' ? ` [${m.body.split('\n')[0]}]` : ''}`)
      .join(', ');
    return `phone ${this.options.phone} (${this.options.scenario}, port ${this.options.port}): ${ladder}\n${err || this.output.slice(-2000)}`;
  }

  stop(): void {
    if (this.done || this.child.exitCode !== null) return;
    this.killed = true;
    this.child.kill('SIGTERM');
  }
}

/** Resolves with the phone's exit code, or rejects after `ms` with its diagnostics. */
export async function exitOf(phone: SippPhone, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${phone.diagnostics()}`)), ms);
  });
  try {
    return await Promise.race([phone.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
