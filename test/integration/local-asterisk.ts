// A real Asterisk started by the integration suite itself, as a child
// process, from a local install (ASTERISK_PREFIX, or `asterisk` on the PATH)
// and a copy of asterisk-config/ in a temporary directory:
//  - [directories] rewritten: the install's modules and data, per-run
//    etc/run/log/spool/db/cache directories (two instances never share a
//    control socket or an astdb);
//  - every port chosen free at start (SIP, HTTP, RTP range, the phones'
//    contacts), so it runs beside an Asterisk the user already has;
//  - its console kept in a file, for the runner to print when tests fail.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { cpSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { CONFIG_DEFAULTS, pingAri, type AsteriskTarget, type PhonePorts } from './asterisk-target.js';

export interface AsteriskInstall {
  binary: string;
  /** Install prefix with lib/asterisk/modules and var/lib/asterisk; undefined = the binary's compiled-in defaults. */
  prefix: string | undefined;
}

/**
 * The local Asterisk to start: ASTERISK_PREFIX, else `asterisk` on the PATH.
 * A string says why there is none; a named prefix without a binary throws.
 */
export function findAsterisk(env: NodeJS.ProcessEnv = process.env): AsteriskInstall | string {
  if (env.ASTERISK_PREFIX) {
    const binary = join(env.ASTERISK_PREFIX, 'sbin', 'asterisk');
    if (!existsSync(binary)) throw new Error(`ASTERISK_PREFIX=${env.ASTERISK_PREFIX} has no sbin/asterisk`);
    return { binary, prefix: env.ASTERISK_PREFIX };
  }
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, 'asterisk');
    if (!existsSync(candidate)) continue;
    const binary = realpathSync(candidate);
    const prefix = dirname(dirname(binary));
    // A relocatable tree (bin in P/sbin, modules in P/lib/asterisk) is used
    // as such; a distribution's Asterisk keeps its compiled-in directories.
    return { binary, prefix: existsSync(join(prefix, 'lib', 'asterisk', 'modules')) ? prefix : undefined };
  }
  return 'no local Asterisk (ASTERISK_PREFIX is not set and no asterisk is on the PATH)';
}

// Ports are picked at random from ranges that nothing else takes between
// our check and the moment a phone binds: outside the kernel's ephemeral
// range (32768-60999), SIPp's own media and control ports (6000+, 8888+)
// and a production Asterisk's RTP range (10000-20000): SIP, HTTP and the
// phones in 21000-24999, RTP in 25000-31999.
const SIGNALLING_PORTS = { from: 21_000, to: 24_999 };
const RTP_PORTS = { from: 25_000, to: 31_999 };

async function isFree(port: number, proto: 'udp' | 'tcp'): Promise<boolean> {
  if (proto === 'tcp') {
    const server = createServer();
    const ok = await new Promise<boolean>((resolve) => server.once('error', () => resolve(false)).listen(port, '127.0.0.1', () => resolve(true)));
    if (ok) await new Promise((resolve) => server.close(resolve));
    return ok;
  }
  const socket = createSocket('udp4');
  const ok = await new Promise<boolean>((resolve) => socket.once('error', () => resolve(false)).bind(port, '127.0.0.1', () => resolve(true)));
  socket.close();
  return ok;
}

async function pickPorts(count: number, range: { from: number; to: number }, taken: number[]): Promise<number[]> {
  const ports: number[] = [];
  for (let tries = 0; ports.length < count; tries++) {
    if (tries > 1000) throw new Error(`no free ports left in ${range.from}-${range.to}`);
    const port = range.from + Math.floor(Math.random() * (range.to - range.from + 1));
    if (taken.includes(port) || ports.includes(port)) continue;
    if ((await isFree(port, 'udp')) && (await isFree(port, 'tcp'))) ports.push(port);
  }
  taken.push(...ports);
  return ports;
}

export interface InstancePorts {
  sip: number;
  http: number;
  rtpStart: number;
  rtpEnd: number;
  phones: PhonePorts;
}

/** Free ports for one instance (several instances' choices never overlap: each is free when chosen, and `taken` keeps one run's picks apart). */
export async function choosePorts(taken: number[] = []): Promise<InstancePorts> {
  const [sip, http, p1001, p1002, p1003, p1004, consult, threePcc] = await pickPorts(8, SIGNALLING_PORTS, taken);
  // RTP: 2,000 ports (1,000 legs) starting where a probe of a few finds them free.
  let rtpStart = 0;
  for (let tries = 0; tries < 50 && rtpStart === 0; tries++) {
    const base = RTP_PORTS.from + 2 * Math.floor(Math.random() * ((RTP_PORTS.to - RTP_PORTS.from - 2000) / 2));
    const probes = await Promise.all([base, base + 500, base + 1000, base + 1998].map((p) => isFree(p, 'udp')));
    if (probes.every(Boolean) && !taken.some((p) => p >= base && p <= base + 1999)) rtpStart = base;
  }
  if (rtpStart === 0) throw new Error('no free RTP port range found');
  taken.push(rtpStart, rtpStart + 1999);
  return {
    sip: sip!,
    http: http!,
    rtpStart,
    rtpEnd: rtpStart + 1999,
    phones: { '1001': p1001!, '1002': p1002!, '1003': p1003!, '1004': p1004!, consult: consult!, threePcc: threePcc! },
  };
}

/** asterisk-config/ with this instance's directories and ports. */
function writeConfig(source: string, etc: string, install: AsteriskInstall, instanceDir: string, ports: InstancePorts): string {
  // Not a password file a developer keeps there (docker-compose.yml's secret):
  // the suite's ARI user is asterisk-config's own.
  cpSync(source, etc, { recursive: true, filter: (path) => !path.endsWith('ari-password.conf') });
  const dirs: Record<string, string> = {
    astetcdir: etc,
    astdbdir: join(instanceDir, 'db'),
    astspooldir: join(instanceDir, 'spool'),
    astrundir: join(instanceDir, 'run'),
    astlogdir: join(instanceDir, 'log'),
    astcachedir: join(instanceDir, 'cache'),
  };
  if (install.prefix) {
    const p = install.prefix;
    Object.assign(dirs, {
      astmoddir: join(p, 'lib', 'asterisk', 'modules'),
      astvarlibdir: join(p, 'var', 'lib', 'asterisk'),
      astdatadir: join(p, 'var', 'lib', 'asterisk'),
      astkeydir: join(p, 'var', 'lib', 'asterisk'),
      astagidir: join(p, 'var', 'lib', 'asterisk', 'agi-bin'),
      astsbindir: join(p, 'sbin'),
    });
  }
  for (const key of ['db', 'spool', 'run', 'log', 'cache']) mkdirSync(join(instanceDir, key), { recursive: true });

  const conf = join(etc, 'asterisk.conf');
  const directories = `[directories]\n${Object.entries(dirs)
    .map(([k, v]) => `${k} => ${v}`)
    .join('\n')}\n`;
  writeFileSync(conf, readFileSync(conf, 'utf8').replace(/^\[directories\][\s\S]*?(?=^\[)/m, `${directories}\n`));

  rewrite(join(etc, 'bind.conf'), [
    [/^bind = 127\.0\.0\.1:\d+$/m, `bind = 127.0.0.1:${ports.sip}`],
    [/^bindport = \d+$/m, `bindport = ${ports.http}`],
  ]);
  rewrite(join(etc, 'rtp.conf'), [
    [/^rtpstart = \d+$/m, `rtpstart = ${ports.rtpStart}`],
    [/^rtpend = \d+$/m, `rtpend = ${ports.rtpEnd}`],
  ]);
  rewrite(
    join(etc, 'pjsip.conf'),
    (['1001', '1002', '1003', '1004'] as const).map((ext) => [new RegExp(`^contact = sip:${ext}@127\\.0\\.0\\.1:\\d+$`, 'm'), `contact = sip:${ext}@127.0.0.1:${ports.phones[ext]}`]),
  );
  return conf;
}

function rewrite(file: string, replacements: [RegExp, string][]): void {
  let text = readFileSync(file, 'utf8');
  for (const [pattern, value] of replacements) {
    if (!pattern.test(text)) throw new Error(`${file}: expected a line matching ${pattern}; asterisk-config changed?`);
    text = text.replace(pattern, value);
  }
  writeFileSync(file, text);
}

export interface StartOptions {
  /** Ports chosen beforehand (choosePorts), e.g. when another instance's config must name them; default: chosen here. */
  ports?: InstancePorts;
  /** Called with the instance's etc directory once the copy of the config is written, before Asterisk starts: add or change files. */
  configure?: (etc: string) => void;
}

export class LocalAsterisk {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly install: AsteriskInstall,
    readonly dir: string,
    readonly configFile: string,
    readonly ports: InstancePorts,
    readonly consoleLogFile: string,
  ) {}

  /** Starts an instance of `install` running a copy of `configDir`; resolves once ARI answers. */
  static async start(install: AsteriskInstall, configDir: string, options: StartOptions = {}): Promise<LocalAsterisk> {
    const dir = mkdtempSync(join(tmpdir(), 'ari-transfer-asterisk-'));
    const ports = options.ports ?? (await choosePorts());
    const configFile = writeConfig(configDir, join(dir, 'etc'), install, join(dir, 'instance'), ports);
    options.configure?.(join(dir, 'etc'));
    const asterisk = new LocalAsterisk(install, dir, configFile, ports, join(dir, 'console.log'));
    await asterisk.run();
    return asterisk;
  }

  get target(): AsteriskTarget {
    return { ariUrl: `http://127.0.0.1:${this.ports.http}`, ...CONFIG_DEFAULTS, sipHost: '127.0.0.1', sipPort: this.ports.sip, phones: this.ports.phones };
  }

  /** Asterisk's process is running (started, and not stopped or exited since). */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** What the suite's environment needs to find and control this instance. */
  get env(): Record<string, string> {
    return {
      ASTERISK_ARI_URL: this.target.ariUrl,
      ASTERISK_SIP_HOST: '127.0.0.1',
      ASTERISK_SIP_PORT: String(this.ports.sip),
      ASTERISK_PHONE_PORTS: JSON.stringify(this.ports.phones),
      ASTERISK_CLI: JSON.stringify([this.install.binary, '-C', this.configFile]),
      ASTERISK_RTP_PORTS: `${this.ports.rtpStart}-${this.ports.rtpEnd}`,
      ASTERISK_PID_FILE: join(this.dir, 'instance', 'run', 'asterisk.pid'),
    };
  }

  consoleTail(lines = 150): string {
    if (!existsSync(this.consoleLogFile)) return '';
    return readFileSync(this.consoleLogFile, 'utf8').split('\n').slice(-lines).join('\n');
  }

  /** Starts this instance again after stop(), with the same config and ports; resolves once ARI answers. */
  async restart(): Promise<void> {
    await this.stop();
    await this.run();
  }

  private async run(): Promise<void> {
    const log = createWriteStream(this.consoleLogFile, { flags: 'a' });
    // -f: foreground (our child), -n: no colour, -g: core dump on crash,
    // written in the instance's directory (cwd), never in the work tree.
    const child = spawn(this.install.binary, ['-f', '-n', '-g', '-C', this.configFile], { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('close', () => resolve()));
    const deadline = Date.now() + 30_000;
    let problem = await pingAri(this.target);
    while (problem) {
      if (child.exitCode !== null) throw new Error(`Asterisk exited with code ${child.exitCode} while starting:\n${this.consoleTail()}`);
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`Asterisk started but ARI never answered (${problem}):\n${this.consoleTail()}`);
      }
      await new Promise((r) => setTimeout(r, 200));
      problem = await pingAri(this.target);
    }
  }

  /** Stops Asterisk: "core stop now", then SIGTERM, then SIGKILL. Idempotent. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    spawnSync(this.install.binary, ['-C', this.configFile, '-rx', 'core stop now'], { timeout: 5000, stdio: 'ignore' });
    if (await within(this.exited, 5000)) return;
    child.kill('SIGTERM');
    if (await within(this.exited, 5000)) return;
    child.kill('SIGKILL');
    await this.exited;
  }

  /** Stops Asterisk and removes its directory; kept, and said so, when Asterisk left a core dump. */
  async dispose(): Promise<void> {
    await this.stop();
    const cores = readdirSync(this.dir).filter((f) => f.startsWith('core'));
    if (cores.length > 0) {
      console.error(`integration: Asterisk crashed and left ${cores.join(', ')} in ${this.dir} (kept, with its console.log and config)`);
      return;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function within(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const done = await Promise.race([promise.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  clearTimeout(timer);
  return done;
}
