// docker/asterisk/entrypoint.sh: the Asterisk image's entrypoint, which
// writes the password of the Docker secret into the file ari.conf includes.
// Asterisk must end up with exactly the password ari-transfer reads from the
// same file (ARI_PASSWORD_FILE), or refuse to start saying why.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';

const entrypoint = new URL('../../docker/asterisk/entrypoint.sh', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'ari-transfer-entrypoint-'));
const secret = join(dir, 'ari_password');
const conf = join(dir, 'ari-password.conf');

/** Runs the entrypoint with `echo started` as the command it execs. */
function run(secretPath = secret) {
  const r = spawnSync('sh', [entrypoint, 'echo', 'started'], {
    env: { PATH: process.env.PATH ?? '', ARI_PASSWORD_FILE: secretPath, ARI_PASSWORD_CONF: conf },
    encoding: 'utf8',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The password Asterisk reads from the written file: its last `password =` value, `\;` unescaped. */
function asteriskPassword(): string {
  const line = readFileSync(conf, 'utf8').split('\n').filter((l) => l.startsWith('password = ')).at(-1)!;
  return line.slice('password = '.length).replaceAll('\\;', ';');
}

describe('the Asterisk image entrypoint', () => {
  it('gives Asterisk the very password ari-transfer reads from the same secret file, then runs the command', () => {
    for (const content of ['3f9c2a7be1d04c58\n', 'no-newline', 'crlf-ended\r\n', 'semi;colons;x\n', 'inner blank\n', 'pä$$wörd%s\n']) {
      writeFileSync(secret, content);
      const { code, stdout } = run();
      expect({ content, code, stdout: stdout.split('\n').at(-2) }).toEqual({ content, code: 0, stdout: 'started' });
      expect(asteriskPassword(), JSON.stringify(content)).toBe(loadConfig({ ARI_USERNAME: 'u', ARI_PASSWORD_FILE: secret }).ari.password);
    }
    writeFileSync(secret, 'a;b\n');
    run();
    expect(readFileSync(conf, 'utf8')).toBe(
      `; Written by the image entrypoint from ${secret} at start; do not edit.\npassword_format = plain\npassword = a\\;b\n`,
    );
  });

  it('without the secret, writes nothing (ari.conf\'s own password applies) and removes a file left from an earlier start', () => {
    writeFileSync(conf, 'password = stale\n');
    const { code, stdout, stderr } = run(join(dir, 'missing'));
    expect(code).toBe(0);
    expect(stdout).toBe('started\n');
    expect(stderr).toContain("the ARI password is ari.conf's own");
    expect(existsSync(conf)).toBe(false);
  });

  it('refuses a password Asterisk would read differently, naming the file, and does not start', () => {
    const refused: [content: string, reason: string][] = [
      ['', 'is empty'],
      ['\n', 'is empty'],
      ['two\nlines\n', 'must hold one line (the password) and nothing else'],
      ['cr-only\r', 'must hold one line (the password) and nothing else'],
      [' leading\n', 'the password must not begin or end with a blank'],
      ['trailing \n', 'the password must not begin or end with a blank'],
      ['back\\slash\n', 'the password must not contain a backslash'],
    ];
    for (const [content, reason] of refused) {
      writeFileSync(secret, content);
      expect(run(), JSON.stringify(content)).toEqual({ code: 1, stdout: '', stderr: `asterisk-entrypoint: ${secret}: ${reason}\n` });
      expect(existsSync(conf)).toBe(false);
    }
  });
});
