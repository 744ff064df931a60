// The service as an operator starts it: `npm start`'s entry point in a real
// child process.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { AriEmulator } from '../emulator/index.js';

const entry = new URL('../../src/main.ts', import.meta.url).pathname;
const root = new URL('../..', import.meta.url).pathname;

function runService(env: Record<string, string>, until?: (stdout: string) => boolean) {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    // HTTP_PORT=0: a free port, so the tests never clash with anything on 8080.
    env: { PATH: process.env.PATH ?? '', HTTP_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (until?.(stdout)) child.kill('SIGTERM');
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
}

describe('ari-transfer process', () => {
  it('exits 2 with one line naming a missing variable', async () => {
    const { code, stderr, stdout } = await runService({ ARI_PASSWORD: 'x' });
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe('ari-transfer: invalid configuration: ARI_USERNAME is required\n');
  });

  it('exits 2 naming a malformed variable, without echoing the password', async () => {
    const { code, stderr } = await runService({ ARI_USERNAME: 'u', ARI_PASSWORD: 'pw-secret', ARI_URL: 'http://u:pw-secret@h:8088' });
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toEqual([
      'ari-transfer: invalid configuration: ARI_URL must not contain credentials; use ARI_USERNAME and ARI_PASSWORD',
    ]);
  });

  it('keeps retrying an unreachable Asterisk, then stops cleanly on SIGTERM', async () => {
    let retries = 0;
    const { code, stdout } = await runService(
      { ARI_USERNAME: 'u', ARI_PASSWORD: 'pw-secret', ARI_URL: 'http://127.0.0.1:1', ARI_RECONNECT_MAX_MS: '100' },
      (out) => (retries = out.split('reconnecting to ARI events').length - 1) >= 3,
    );
    expect(retries).toBeGreaterThanOrEqual(3);
    expect(code).toBe(0);
    expect(stdout).toContain('"msg":"stopped"');
    expect(stdout).not.toContain('pw-secret');
  });

  // Was a bug: npm runs a script through `sh -c`, and forwards SIGTERM to that
  // shell only; dash does not pass it on, so node went on running, orphaned,
  // and npm exited 143. The script now execs node, which npm then signals
  // directly and waits for.
  it('`npm start`, as the README runs it: SIGTERM stops the service cleanly, npm exits 0, no node left behind', async () => {
    const emu = await AriEmulator.start({ app: 'ari-transfer', username: 'asterisk', password: 'pw-secret' });
    let servicePid: number | undefined;
    try {
      const npm = spawn('npm', ['start'], {
        cwd: root,
        env: {
          PATH: process.env.PATH ?? '',
          ...(process.env.HOME ? { HOME: process.env.HOME } : {}),
          npm_config_update_notifier: 'false',
          HTTP_PORT: '0',
          ARI_URL: emu.url,
          ARI_USERNAME: 'asterisk',
          ARI_PASSWORD: 'pw-secret',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      npm.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      npm.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (!stdout.includes('registry resynced from ARI')) return;
        // The service's own pid, from its log: the process that must not outlive npm.
        servicePid ??= (JSON.parse(stdout.split('\n').find((l) => l.startsWith('{'))!) as { pid: number }).pid;
        npm.kill('SIGTERM');
      });
      const closed = new Promise<void>((resolve) => npm.on('close', () => resolve()));
      // 'exit', not 'close': a node left behind would hold the output pipes open.
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => npm.on('exit', (c, s) => resolve([c, s])));
      expect(servicePid).toBeGreaterThan(0);
      expect(servicePid).not.toBe(npm.pid);
      expect({ code, signal, serviceLeftRunning: isRunning(servicePid!) }).toEqual({ code: 0, signal: null, serviceLeftRunning: false });
      await closed;
      expect(stderr).toBe('');
      expect(stdout).toContain('"signal":"SIGTERM","msg":"shutting down"');
      expect(stdout).toContain('"msg":"stopped"');
    } finally {
      if (servicePid !== undefined && isRunning(servicePid)) process.kill(servicePid, 'SIGKILL');
      await emu.close();
    }
    // npm, then node with tsx, to start: slow on a busy machine.
  }, 40_000);

  it('connects to ARI, syncs, and exits 0 on SIGINT', async () => {
    const emu = await AriEmulator.start({ app: 'ari-transfer', username: 'asterisk', password: 'pw-secret' });
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', entry], {
        env: { PATH: process.env.PATH ?? '', HTTP_PORT: '0', ARI_URL: emu.url, ARI_USERNAME: 'asterisk', ARI_PASSWORD: 'pw-secret' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('registry resynced from ARI')) child.kill('SIGINT');
      });
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code).toBe(0);
      expect(stdout).toContain('ARI events connected');
      expect(stdout).not.toContain('pw-secret');
      expect(emu.requests.map((r) => `${r.method} ${r.path}`)).toEqual(expect.arrayContaining(['GET /channels', 'GET /bridges']));
    } finally {
      await emu.close();
    }
  });
});

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}
