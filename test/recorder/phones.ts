// SIPp phones for the recorder: one sipp process per phone, each writing its own
// message log (`<scenario>.<phone>.sipp-messages.txt`), on the recorder's ports.
// Scenario files come from test/recorder/sipp/ or test/integration/sipp/.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ScenarioLog } from './ari-log.js';
import { PORTS } from './asterisk.js';

const OWN = fileURLToPath(new URL('./sipp/', import.meta.url));
const INTEGRATION = fileURLToPath(new URL('../integration/sipp/', import.meta.url));

export interface PhoneSpec {
  /** Label in file names and logs, e.g. `1002` or `1002-consult`. */
  label: string;
  scenario: string;
  /** From user (the endpoint). */
  phone: string;
  port: number;
  /** Extension to call (calling scenarios). */
  call?: string;
  keys?: Record<string, string>;
  threePcc?: boolean;
  /** `{{name}}` placeholders of the scenario file to replace (things sipp cannot take as -key). */
  template?: Record<string, string>;
}

export class Phone {
  readonly exited: Promise<number | null>;
  private output = '';

  private constructor(
    readonly spec: PhoneSpec,
    readonly messageFile: string,
    private readonly child: ChildProcess,
  ) {
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  }

  /**
   * `outDir/<scenario>.<label>.sipp-messages.txt` gets sipp's message trace; filled-in
   * templates are written under `workDir/sipp/`.
   */
  static start(spec: PhoneSpec, scenarioName: string, outDir: string, workDir: string, log: ScenarioLog): Phone {
    let file = [join(OWN, spec.scenario), join(INTEGRATION, spec.scenario)].find((f) => existsSync(f));
    if (!file) throw new Error(`recorder: no sipp scenario ${spec.scenario}`);
    if (spec.template) {
      let text = readFileSync(file, 'utf8');
      for (const [k, v] of Object.entries(spec.template)) text = text.split(`{{${k}}}`).join(v);
      mkdirSync(join(workDir, 'sipp'), { recursive: true });
      file = join(workDir, 'sipp', spec.scenario);
      writeFileSync(file, text);
    }
    const messageFile = join(outDir, `${scenarioName}.${spec.label}.sipp-messages.txt`);
    const args = [
      '-sf', file,
      '-key', 'phone', spec.phone,
      ...Object.entries(spec.keys ?? {}).flatMap(([k, v]) => ['-key', k, v]),
      ...(spec.call ? ['-s', spec.call] : []),
      ...(spec.threePcc ? ['-3pcc', `127.0.0.1:${PORTS.threePcc}`] : []),
      '-i', '127.0.0.1',
      '-p', String(spec.port),
      // sipp's own media ports (audio and video, 2 apart), out of everybody else's way.
      '-mp', String(25300 + (spec.port - PORTS.sip) * 4),
      '-m', '1',
      '-aa',
      '-nostdin',
      '-timeout', '60s',
      '-timeout_error',
      '-trace_msg',
      '-message_file', messageFile,
      `127.0.0.1:${PORTS.sip}`,
    ];
    log.step(`PHONE ${spec.label} start: sipp ${args.join(' ')}`);
    const child = spawn('sipp', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const phone = new Phone(spec, messageFile, child);
    void phone.exited.then((code) => {
      log.step(`PHONE ${spec.label} exited ${code}`);
      if (code !== 0) log.step(`PHONE ${spec.label} output: ${phone.tail().replace(/\s+/g, ' ').slice(-600)}`);
    });
    return phone;
  }

  /** Waits for the phone's scenario to end; kills it after `timeoutMs`. */
  async done(timeoutMs = 30_000): Promise<number | null> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }

  tail(): string {
    return this.output.slice(-1500);
  }
}
