// The service as an operator starts it: `npm start`'s entry point in a real
// child process.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { AriEmulator } from '../emulator/index.js';

const entry = new URL('../../src/main.ts', import.meta.url).pathname;

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
