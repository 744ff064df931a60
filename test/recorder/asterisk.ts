// A private Asterisk instance for recording: a copy of asterisk-config/ in a temp
// directory with its own ports and directories (shared/asterisk/README.md,
// "Running an instance with your own config"), started as a child process and
// stopped with `core stop now`.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The recorder's ports, chosen not to collide with other instances on this machine. */
export const PORTS = {
  sip: 25060,
  http: 28088,
  rtpStart: 26000,
  rtpEnd: 26999,
  /** Phones 1001..1004 listen on 25061..25064; 1002's consultation leg on 25072. */
  phone: (n: number): number => 25060 + n,
  consult: 25072,
  threePcc: 25099,
} as const;

export const ARI_USER = 'ari-transfer';
export const ARI_PASSWORD = 'change-me';
export const ARI_APP = 'ari-transfer';
/** The second Stasis application of the multi-app scenario (extension 8001). */
export const OTHER_APP = 'other-app';

export interface InstanceOptions {
  /** Install prefix of the prebuilt Asterisk. */
  prefix: string;
  /** The repository's asterisk-config/ directory to copy. */
  configDir: string;
}

export class AsteriskInstance {
  readonly base: string;
  readonly etc: string;
  readonly logFile: string;
  private child?: ChildProcess;
  private console = '';

  private constructor(readonly opts: InstanceOptions) {
    this.base = mkdtempSync(join(tmpdir(), 'ari-recorder-'));
    this.etc = join(this.base, 'etc');
    this.logFile = join(this.base, 'log', 'messages.log');
  }

  /** Writes the config, starts Asterisk and waits until ARI answers. */
  static async start(opts: InstanceOptions): Promise<AsteriskInstance> {
    const a = new AsteriskInstance(opts);
    a.writeConfig();
    await a.launch();
    return a;
  }

  get ariUrl(): string {
    return `http://127.0.0.1:${PORTS.http}`;
  }

  /** Asterisk's console output so far (verbose lines: MOH started/stopped, ...). */
  consoleText(): string {
    return this.console;
  }

  cli(command: string): string {
    const r = spawnSync(join(this.opts.prefix, 'sbin/asterisk'), ['-C', join(this.etc, 'asterisk.conf'), '-rx', command], {
      encoding: 'utf8',
    });
    return `${r.stdout}${r.stderr}`;
  }

  async stop(): Promise<void> {
    if (!this.child || this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child!.once('exit', () => resolve()));
    this.cli('core stop now');
    const timer = setTimeout(() => this.child?.kill('SIGTERM'), 5000);
    await exited;
    clearTimeout(timer);
  }

  private writeConfig(): void {
    cpSync(this.opts.configDir, this.etc, { recursive: true });
    for (const d of ['db', 'spool', 'run', 'log', 'cache']) mkdirSync(join(this.base, d), { recursive: true });
    const P = this.opts.prefix;
    const I = this.base;
    this.rewrite('asterisk.conf', (text) =>
      text.replace(
        /\[directories\][\s\S]*?(?=\n\[)/,
        [
          '[directories]',
          `astetcdir => ${this.etc}`,
          `astmoddir => ${P}/lib/asterisk/modules`,
          `astvarlibdir => ${P}/var/lib/asterisk`,
          `astdatadir => ${P}/var/lib/asterisk`,
          `astkeydir => ${P}/var/lib/asterisk`,
          `astagidir => ${P}/var/lib/asterisk/agi-bin`,
          `astsbindir => ${P}/sbin`,
          `astdbdir => ${I}/db`,
          `astspooldir => ${I}/spool`,
          `astrundir => ${I}/run`,
          `astlogdir => ${I}/log`,
          `astcachedir => ${I}/cache`,
          '',
        ].join('\n'),
      ),
    );
    this.rewrite('bind.conf', (text) =>
      text.replace(/bind = 127\.0\.0\.1:5060/, `bind = 127.0.0.1:${PORTS.sip}`).replace(/bindport = 8088/, `bindport = ${PORTS.http}`),
    );
    this.rewrite('rtp.conf', (text) =>
      text.replace(/rtpstart = \d+/, `rtpstart = ${PORTS.rtpStart}`).replace(/rtpend = \d+/, `rtpend = ${PORTS.rtpEnd}`),
    );
    this.rewrite('pjsip.conf', (text) =>
      text.replace(/contact = sip:(100\d)@127\.0\.0\.1:506(\d)/g, (_m, user: string, n: string) => `contact = sip:${user}@127.0.0.1:${PORTS.phone(Number(n))}`) +
      [
        '',
        '; ---- added by the recorder ----',
        '; 1009: a phone that never registered (an AOR without contact): "unreachable".',
        '[1009](phone-endpoint)',
        'aors = 1009',
        '[1009](phone-aor)',
        '',
      ].join('\n'),
    );
    this.rewrite('modules.conf', (text) => `${text}\n; added by the recorder: the prebuilt's MOH files are .wav\nload = format_wav.so\n`);
    this.rewrite('extensions.conf', (text) =>
      text.replace(
        '[from-phones]\n',
        `[from-phones]\n; added by the recorder: a second Stasis application\nexten => 8001,1,Stasis(${OTHER_APP})\n same => n,Hangup()\n`,
      ),
    );
  }

  private rewrite(file: string, fn: (text: string) => string): void {
    const path = join(this.etc, file);
    const before = readFileSync(path, 'utf8');
    const after = fn(before);
    if (after === before) throw new Error(`recorder: rewriting ${file} changed nothing`);
    writeFileSync(path, after);
  }

  private async launch(): Promise<void> {
    const bin = join(this.opts.prefix, 'sbin/asterisk');
    this.child = spawn(bin, ['-f', '-n', '-vvv', '-C', join(this.etc, 'asterisk.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (d: Buffer) => (this.console += d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => (this.console += d.toString()));
    const auth = `Basic ${Buffer.from(`${ARI_USER}:${ARI_PASSWORD}`).toString('base64')}`;
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`recorder: Asterisk exited at start:\n${this.console.slice(-3000)}`);
      try {
        const res = await fetch(`${this.ariUrl}/ari/asterisk/info`, { headers: { Authorization: auth } });
        if (res.status === 200) return;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`recorder: ARI did not answer within 20 s:\n${this.console.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
