// The service as production runs it: `node --import tsx src/main.ts` in a
// child process, configured by environment variables, its JSON log lines
// kept, its readiness read from GET /readyz like an orchestrator would.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

export class ServiceProcess {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private out = '';
  private port: number | undefined;

  private constructor(private readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => this.read(d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.out += d.toString()));
    this.exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  }

  /**
   * Starts the service with `env` (PATH, HTTP_PORT=0 and LOG_LEVEL=info unless given).
   * Its HTTP port is read from its start-up log line, or taken from a
   * non-zero HTTP_PORT (below LOG_LEVEL=info that line is not printed).
   */
  static start(env: Record<string, string>): ServiceProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HTTP_PORT: '0', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const service = new ServiceProcess(child);
    const port = Number(env.HTTP_PORT ?? '0');
    if (Number.isInteger(port) && port > 0) service.port = port;
    return service;
  }

  /** The node process's id (its CPU time is in /proc/<pid>/stat). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Base URL of its HTTP API (http://127.0.0.1:<port>), once the port is known. */
  get apiUrl(): string | undefined {
    return this.port === undefined ? undefined : `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Everything it printed, stdout and stderr. */
  get output(): string {
    return this.out;
  }

  /** The `msg` of each JSON log line, in order. */
  messages(): string[] {
    return this.out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return String((JSON.parse(l) as { msg?: unknown }).msg);
        } catch {
          return '';
        }
      });
  }

  /** GET /readyz: true once connected to ARI and synced, false otherwise (also before the API listens). */
  async ready(): Promise<boolean> {
    if (this.port === undefined || !this.running) return false;
    try {
      const res = await fetch(`http://127.0.0.1:${this.port}/readyz`, { signal: AbortSignal.timeout(2000) });
      return res.status === 200;
    } catch {
      return false;
    }
  }

  /** How many ARI REST requests of `operation` (e.g. channels.originate) have been answered or failed, from GET /metrics. */
  async ariRequests(operation: string): Promise<number> {
    if (this.port === undefined || !this.running) return 0;
    const text = await (await fetch(`http://127.0.0.1:${this.port}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
    const line = new RegExp(`^ari_transfer_ari_requests_total\\{operation="${operation.replace(/\./g, '\\.')}",status="[^"]*"\\} (\\d+)$`, 'gm');
    return [...text.matchAll(line)].reduce((sum, m) => sum + Number(m[1]), 0);
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Clean-up after a test, passed or failed: SIGKILL if it still runs. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** The last lines it printed, for a failing test's message. */
  tail(lines = 60): string {
    return `--- service output (last ${lines} lines) ---\n${this.out.split('\n').slice(-lines).join('\n')}`;
  }

  private read(text: string): void {
    this.out += text;
    if (this.port !== undefined) return;
    const line = /^\{.*"msg":"HTTP API listening on [^"]*".*\}$/m.exec(this.out);
    if (line) this.port = (JSON.parse(line[0]) as { port: number }).port;
  }
}
