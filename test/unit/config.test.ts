import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { captureLogs } from '../helpers/log-capture.js';

const base = { ARI_USERNAME: 'asterisk', ARI_PASSWORD: 's3cret-pw' };

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies defaults for everything but the credentials', () => {
    const config = loadConfig(base);
    expect(config).toEqual({
      ari: {
        url: 'http://127.0.0.1:8088',
        username: 'asterisk',
        password: 's3cret-pw',
        app: 'ari-transfer',
        subscribeAll: false,
        requestTimeoutMs: 5000,
        reconnectMaxDelayMs: 10000,
      },
      logLevel: 'info',
    });
  });

  it('reads every variable', () => {
    const config = loadConfig({
      ...base,
      ARI_URL: 'https://pbx.example.com:8089/ari/',
      ARI_APP: 'my-app',
      ARI_SUBSCRIBE_ALL: 'true',
      ARI_REQUEST_TIMEOUT_MS: '2500',
      ARI_RECONNECT_MAX_MS: '3000',
      LOG_LEVEL: 'debug',
    });
    expect(config.ari.url).toBe('https://pbx.example.com:8089');
    expect(config.ari.app).toBe('my-app');
    expect(config.ari.subscribeAll).toBe(true);
    expect(config.ari.requestTimeoutMs).toBe(2500);
    expect(config.ari.reconnectMaxDelayMs).toBe(3000);
    expect(config.logLevel).toBe('debug');
  });

  it('names each missing or malformed variable', () => {
    expect(problemsOf({})).toEqual(['ARI_USERNAME is required']);
    expect(problemsOf({ ARI_USERNAME: 'a' })[0]).toMatch(/^ARI_PASSWORD is required/);
    expect(problemsOf({ ...base, ARI_URL: 'not a url' })).toEqual(['ARI_URL must be a URL such as http://127.0.0.1:8088']);
    expect(problemsOf({ ...base, ARI_URL: 'ws://h:8088' })).toEqual(['ARI_URL must use http:// or https://']);
    expect(problemsOf({ ...base, ARI_APP: 'bad app!' })[0]).toMatch(/^ARI_APP must be a Stasis application name/);
    expect(problemsOf({ ...base, ARI_SUBSCRIBE_ALL: 'maybe' })).toEqual(['ARI_SUBSCRIBE_ALL must be true or false']);
    expect(problemsOf({ ...base, ARI_REQUEST_TIMEOUT_MS: '5s' })).toEqual([
      'ARI_REQUEST_TIMEOUT_MS must be a whole number of milliseconds',
    ]);
    expect(problemsOf({ ...base, ARI_RECONNECT_MAX_MS: '5' })).toEqual(['ARI_RECONNECT_MAX_MS must be at least 100']);
    expect(problemsOf({ ...base, LOG_LEVEL: 'loud' })[0]).toMatch(/^LOG_LEVEL must be one of fatal, error/);
  });

  it('reports several problems in one message', () => {
    expect(() => loadConfig({ ...base, LOG_LEVEL: 'x', ARI_APP: '' + '?' })).toThrow(
      /invalid configuration: ARI_APP .*; LOG_LEVEL /,
    );
  });

  it('refuses credentials inside ARI_URL, without echoing them', () => {
    const problems = problemsOf({ ...base, ARI_URL: 'http://user:hunter2@pbx:8088' });
    expect(problems).toEqual(['ARI_URL must not contain credentials; use ARI_USERNAME and ARI_PASSWORD']);
    expect(problems.join()).not.toContain('hunter2');
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ ...base, ARI_APP: '', LOG_LEVEL: '' }).ari.app).toBe('ari-transfer');
  });

  describe('ARI_PASSWORD_FILE', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ari-transfer-config-'));

    it('reads the password from the file, without its trailing newline', () => {
      const file = join(dir, 'pw');
      writeFileSync(file, 'from-file\n');
      expect(loadConfig({ ARI_USERNAME: 'a', ARI_PASSWORD_FILE: file }).ari.password).toBe('from-file');
    });

    it('says when the file cannot be read or is empty', () => {
      expect(problemsOf({ ARI_USERNAME: 'a', ARI_PASSWORD_FILE: join(dir, 'missing') })[0]).toMatch(
        /^ARI_PASSWORD_FILE cannot be read \(ENOENT\)/,
      );
      const empty = join(dir, 'empty');
      writeFileSync(empty, '\n');
      expect(problemsOf({ ARI_USERNAME: 'a', ARI_PASSWORD_FILE: empty })[0]).toMatch(/^ARI_PASSWORD_FILE is empty/);
    });

    it('refuses both ways at once', () => {
      const file = join(dir, 'pw2');
      writeFileSync(file, 'x');
      expect(problemsOf({ ...base, ARI_PASSWORD_FILE: file })).toEqual([
        'ARI_PASSWORD and ARI_PASSWORD_FILE are both set; set only one',
      ]);
    });
  });
});

describe('logger redaction', () => {
  it('never writes the password, however the config is logged', () => {
    const logs = captureLogs();
    const config = loadConfig(base);
    logs.logger.info({ config }, 'loaded');
    logs.logger.info({ ari: config.ari }, 'ari');
    logs.logger.info({ password: config.ari.password, headers: { authorization: 'Basic abc' } }, 'raw');
    expect(logs.lines).toHaveLength(3);
    expect(logs.text()).not.toContain('s3cret-pw');
    expect(logs.text()).not.toContain('Basic abc');
    expect(logs.text()).toContain('[redacted]');
  });
});
