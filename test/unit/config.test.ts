import { mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, describeConfig, loadConfig } from '../../src/config.js';
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
        restTransport: 'websocket',
      },
      registry: { kind: 'memory', node: '127.0.0.1:8088', redis: undefined },
      ha: { mode: 'off', leaseMs: 5000, instanceId: `${hostname()}-${process.pid}` },
      http: { host: '127.0.0.1', port: 8080, token: undefined },
      webhooks: { eventHook: undefined, actionHook: undefined, secret: undefined, timeoutMs: 5000, retries: 5 },
      shutdownGraceMs: 10_000,
      transferHistorySize: 100,
      routing: 'dial',
      routingTimeoutMs: 60_000,
      mohClass: 'default',
      transfer: {
        dialTemplate: 'PJSIP/{exten}',
        timeoutMs: 30_000,
        holdMode: 'ring',
        callerId: 'transferee',
        channelVars: {},
        allow: [],
        deny: [],
        policyUrl: undefined,
        policyTimeoutMs: 2000,
        immediate200Endpoints: [],
        internodeDialTemplate: 'PJSIP/{exten}@node-{node}',
        nodeRoutes: [],
        recall: { to: 'off' },
        recallTimeoutMs: 20_000,
        connectedLine: true,
        referOut: undefined,
      },
      logLevel: 'info',
    });
  });

  it('reads the shared registry and active/standby variables', () => {
    const config = loadConfig({
      ...base,
      ARI_URL: 'http://pbx-1.example:8088',
      REGISTRY: 'redis',
      REDIS_URL: 'redis://:redis-pw@redis.example:6380/2',
      REDIS_KEY_PREFIX: 'site-a',
      REDIS_TTL: '10',
      HA_MODE: 'active-standby',
      HA_LEASE_MS: '3000',
      INSTANCE_ID: 'pbx-1-a',
    });
    expect({ registry: config.registry, ha: config.ha }).toEqual({
      registry: { kind: 'redis', node: 'pbx-1.example:8088', redis: { url: 'redis://:redis-pw@redis.example:6380/2', keyPrefix: 'site-a', ttlMs: 10_000 } },
      ha: { mode: 'active-standby', leaseMs: 3000, instanceId: 'pbx-1-a' },
    });
    expect(loadConfig({ ...base, REGISTRY: 'redis', REDIS_URL: 'rediss://r:6379', ASTERISK_NODE: 'ast1' }).registry.node).toBe('ast1');
    // The Redis password is not logged.
    expect(JSON.stringify(describeConfig(config))).not.toContain('redis-pw');
    expect(describeConfig(config).registry).toMatchObject({ redis: { url: 'redis://:redacted@redis.example:6380/2' } });
  });

  it('reads TRANSFER_NODE_ROUTES: per node, anchored patterns as TRANSFER_ALLOW; refuses a malformed one', () => {
    const routes = loadConfig({ ...base, TRANSFER_NODE_ROUTES: 'b=2\\d{3},3\\d{3}; c = 4\\d{3}' }).transfer.nodeRoutes;
    expect(routes.map((r) => ({ node: r.node, patterns: r.patterns.map((p) => p.source) }))).toEqual([
      { node: 'b', patterns: ['^(?:2\\d{3})$', '^(?:3\\d{3})$'] },
      { node: 'c', patterns: ['^(?:4\\d{3})$'] },
    ]);
    // A route to this very node (ASTERISK_NODE) is dropped: its destinations are dialled here.
    expect(loadConfig({ ...base, ASTERISK_NODE: 'c', TRANSFER_NODE_ROUTES: 'b=2\\d{3};c=4\\d{3}' }).transfer.nodeRoutes.map((r) => r.node)).toEqual(['b']);
    expect(problemsOf({ ...base, TRANSFER_NODE_ROUTES: '2\\d{3}' })).toEqual(['TRANSFER_NODE_ROUTES is invalid: "2\\d{3}" is not <node>=<patterns>, e.g. b=2\\d{3}']);
    expect(problemsOf({ ...base, TRANSFER_NODE_ROUTES: 'b=' })).toEqual(['TRANSFER_NODE_ROUTES is invalid: node b has no pattern']);
  });

  it('refuses a shared registry or a pair that cannot work, naming the variables', () => {
    expect(problemsOf({ ...base, REGISTRY: 'redis' })).toEqual(['REDIS_URL is required when REGISTRY=redis']);
    expect(problemsOf({ ...base, REDIS_URL: 'redis://r:6379' })).toEqual([
      'REDIS_URL is set but REGISTRY is memory: set REGISTRY=redis to share the registry, or unset REDIS_URL',
    ]);
    expect(problemsOf({ ...base, HA_MODE: 'active-standby' })).toEqual([
      'HA_MODE=active-standby needs REGISTRY=redis and REDIS_URL: the lease and the shared registry live in Redis',
    ]);
    expect(problemsOf({ ...base, REGISTRY: 'redis', REDIS_URL: 'http://r:6379', REDIS_TTL: '1', HA_MODE: 'on', HA_LEASE_MS: '100', ASTERISK_NODE: 'a b' })).toEqual([
      'REDIS_URL must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379',
      'REDIS_TTL must be a number of seconds from 3 to 3600',
      'HA_MODE must be off or active-standby',
      'HA_LEASE_MS must be a whole number of milliseconds from 1000 to 60000',
      'ASTERISK_NODE must be letters, digits, . _ : -',
    ]);
  });

  it('reads the transfer, routing and hold variables', () => {
    const config = loadConfig({
      ...base,
      ROUTING: 'none',
      ROUTING_TIMEOUT: '20',
      MOH_CLASS: 'jazz',
      TRANSFER_DIAL_TEMPLATE: 'PJSIP/{exten}@trunk',
      TRANSFER_TIMEOUT: '0.5',
      TRANSFER_HOLD_MODE: 'moh',
      TRANSFER_CALLER_ID: 'transferer',
      TRANSFER_CHANNEL_VARS: '{"PJSIP_HEADER(add,X-Transfer)":"blind"}',
      TRANSFER_ALLOW: '1\\d{3},\\+49.*',
      TRANSFER_DENY: '1900.*',
      TRANSFER_POLICY_URL: 'http://127.0.0.1:9000/policy',
      TRANSFER_POLICY_TIMEOUT_MS: '500',
      TRANSFER_IMMEDIATE_200_ENDPOINTS: 'snom-.*,mitel-.*',
      TRANSFER_CONNECTED_LINE: 'off',
    });
    expect(config.routing).toBe('none');
    // Without routing another application owns the calls: subscribe to all.
    expect(config.ari.subscribeAll).toBe(true);
    expect(config.routingTimeoutMs).toBe(20_000);
    expect(config.mohClass).toBe('jazz');
    expect(config.transfer).toMatchObject({
      dialTemplate: 'PJSIP/{exten}@trunk',
      timeoutMs: 500,
      holdMode: 'moh',
      callerId: 'transferer',
      channelVars: { 'PJSIP_HEADER(add,X-Transfer)': 'blind' },
      policyUrl: 'http://127.0.0.1:9000/policy',
      policyTimeoutMs: 500,
      connectedLine: false,
    });
    expect(config.transfer.allow.map((r) => r.test('1234'))).toEqual([true, false]);
    expect(config.transfer.allow[0]!.test('91234')).toBe(false);
    expect(config.transfer.deny[0]!.test('19001234')).toBe(true);
    expect(config.transfer.immediate200Endpoints.some((r) => r.test('snom-12'))).toBe(true);
    expect(loadConfig({ ...base, ROUTING: 'none', ARI_SUBSCRIBE_ALL: 'false' }).ari.subscribeAll).toBe(false);
  });

  it('names each malformed transfer variable', () => {
    expect(problemsOf({ ...base, ROUTING: 'proxy' })).toEqual(['ROUTING must be dial or none']);
    expect(problemsOf({ ...base, TRANSFER_DIAL_TEMPLATE: 'PJSIP/1003' })).toEqual([
      'TRANSFER_DIAL_TEMPLATE must contain {exten}, e.g. PJSIP/{exten} or PJSIP/{exten}@trunk',
    ]);
    expect(problemsOf({ ...base, TRANSFER_TIMEOUT: 'soon' })).toEqual(['TRANSFER_TIMEOUT must be a number of seconds from 0.1 to 600']);
    expect(problemsOf({ ...base, TRANSFER_TIMEOUT: '0' })).toEqual(['TRANSFER_TIMEOUT must be a number of seconds from 0.1 to 600']);
    expect(problemsOf({ ...base, TRANSFER_HOLD_MODE: 'silence' })).toEqual(['TRANSFER_HOLD_MODE must be ring or moh']);
    expect(problemsOf({ ...base, TRANSFER_CONNECTED_LINE: 'yes' })).toEqual(['TRANSFER_CONNECTED_LINE must be on or off']);
    expect(problemsOf({ ...base, TRANSFER_CHANNEL_VARS: '{"a":1}' })[0]).toMatch(/^TRANSFER_CHANNEL_VARS must be a JSON object of strings/);
    expect(problemsOf({ ...base, TRANSFER_DENY: '1900(' })[0]).toMatch(/^TRANSFER_DENY is invalid: invalid regular expression "1900\(":/);
    expect(problemsOf({ ...base, TRANSFER_POLICY_URL: 'ftp://x/y' })).toEqual(['TRANSFER_POLICY_URL must be an http(s) URL']);
    expect(problemsOf({ ...base, MOH_CLASS: 'a b' })).toEqual(['MOH_CLASS must be a musiconhold.conf class name']);
    expect(problemsOf({ ...base, TRANSFER_RECALL: '1004@trunk' })).toEqual([
      "TRANSFER_RECALL must be off, transferer or a destination to dial (destination contains a forbidden character '@' (U+0040) at position 5: \"1004@trunk\")",
    ]);
    expect(problemsOf({ ...base, TRANSFER_RECALL_TIMEOUT: '0' })).toEqual(['TRANSFER_RECALL_TIMEOUT must be a number of seconds from 1 to 600']);
  });

  it('reads TRANSFER_RECALL as off, the transferer, or a fallback destination', () => {
    expect(loadConfig({ ...base, TRANSFER_RECALL: 'transferer' }).transfer.recall).toEqual({ to: 'transferer' });
    expect(loadConfig({ ...base, TRANSFER_RECALL: '+33123456789' }).transfer.recall).toEqual({ to: 'destination', destination: '+33123456789' });
    expect(loadConfig({ ...base, TRANSFER_RECALL: 'off', TRANSFER_RECALL_TIMEOUT: '7.5' }).transfer).toMatchObject({ recall: { to: 'off' }, recallTimeoutMs: 7500 });
  });

  it('REFER out: the three variables together, read; one without the others, or a target ARI cannot redirect to, named', () => {
    const config = loadConfig({
      ...base,
      TRANSFER_REFER_OUT_ENDPOINTS: 'carrier-.*',
      TRANSFER_REFER_OUT_DESTINATIONS: '0[1-9]\\d{8}',
      TRANSFER_REFER_OUT_TARGET: 'PJSIP/sip:{exten}@carrier.example',
    });
    const referOut = config.transfer.referOut!;
    expect(referOut.target).toBe('PJSIP/sip:{exten}@carrier.example');
    expect(['carrier-a', 'xcarrier-a', '1001'].map((e) => referOut.endpoints.some((r) => r.test(e)))).toEqual([true, false, false]);
    expect(['0612345678', '1003'].map((d) => referOut.destinations.some((r) => r.test(d)))).toEqual([true, false]);

    expect(problemsOf({ ...base, TRANSFER_REFER_OUT_ENDPOINTS: 'carrier' })).toEqual([
      'TRANSFER_REFER_OUT_DESTINATIONS is required when any TRANSFER_REFER_OUT_* variable is set (REFER out needs the trunks, the destinations and the Refer-To)',
      'TRANSFER_REFER_OUT_TARGET is required when any TRANSFER_REFER_OUT_* variable is set (REFER out needs the trunks, the destinations and the Refer-To)',
    ]);
    expect(problemsOf({ ...base, TRANSFER_REFER_OUT_TARGET: 'PJSIP/sip:{exten}@c' })).toHaveLength(2);
    const all = { ...base, TRANSFER_REFER_OUT_ENDPOINTS: 'carrier', TRANSFER_REFER_OUT_DESTINATIONS: '0.*' };
    expect(problemsOf({ ...all, TRANSFER_REFER_OUT_TARGET: 'SIP/{exten}@carrier' })).toEqual([
      'TRANSFER_REFER_OUT_TARGET must start with PJSIP/ (ARI redirects a channel within its own technology), e.g. PJSIP/sip:{exten}@carrier.example',
    ]);
    expect(problemsOf({ ...all, TRANSFER_REFER_OUT_TARGET: 'PJSIP/sip:1003@carrier' })).toEqual([
      'TRANSFER_REFER_OUT_TARGET must contain {exten}, e.g. PJSIP/sip:{exten}@carrier.example',
    ]);
    expect(problemsOf({ ...all, TRANSFER_REFER_OUT_DESTINATIONS: '0(' })[0]).toMatch(/^TRANSFER_REFER_OUT_DESTINATIONS is invalid: /);
  });

  it('reads every variable', () => {
    const config = loadConfig({
      ...base,
      ARI_URL: 'https://pbx.example.com:8089/ari/',
      ARI_APP: 'my-app',
      ARI_SUBSCRIBE_ALL: 'true',
      ARI_REQUEST_TIMEOUT_MS: '2500',
      ARI_RECONNECT_MAX_MS: '3000',
      ARI_REST_TRANSPORT: 'http',
      LOG_LEVEL: 'debug',
    });
    expect(config.ari.url).toBe('https://pbx.example.com:8089');
    expect(config.ari.app).toBe('my-app');
    expect(config.ari.subscribeAll).toBe(true);
    expect(config.ari.requestTimeoutMs).toBe(2500);
    expect(config.ari.reconnectMaxDelayMs).toBe(3000);
    expect(config.ari.restTransport).toBe('http');
    expect(config.logLevel).toBe('debug');
  });

  it('names each missing or malformed variable', () => {
    expect(problemsOf({})).toEqual(['ARI_USERNAME is required']);
    expect(problemsOf({ ARI_USERNAME: 'a' })[0]).toMatch(/^ARI_PASSWORD is required/);
    expect(problemsOf({ ...base, ARI_URL: 'not a url' })).toEqual(['ARI_URL must be a URL such as http://127.0.0.1:8088']);
    expect(problemsOf({ ...base, ARI_URL: 'ws://h:8088' })).toEqual(['ARI_URL must use http:// or https://']);
    expect(problemsOf({ ...base, ARI_REST_TRANSPORT: 'grpc' })).toEqual(['ARI_REST_TRANSPORT must be websocket or http']);
    expect(problemsOf({ ...base, ARI_APP: 'bad app!' })[0]).toMatch(/^ARI_APP must be a Stasis application name/);
    expect(problemsOf({ ...base, ARI_SUBSCRIBE_ALL: 'maybe' })).toEqual(['ARI_SUBSCRIBE_ALL must be true or false']);
    expect(problemsOf({ ...base, ARI_REQUEST_TIMEOUT_MS: '5s' })).toEqual([
      'ARI_REQUEST_TIMEOUT_MS must be a whole number of milliseconds from 100 to 60000',
    ]);
    expect(problemsOf({ ...base, ARI_RECONNECT_MAX_MS: '5' })).toEqual(['ARI_RECONNECT_MAX_MS must be a whole number of milliseconds from 100 to 300000']);
    expect(problemsOf({ ...base, LOG_LEVEL: 'loud' })[0]).toMatch(/^LOG_LEVEL must be one of fatal, error/);
  });

  // Was a bug: WEBHOOK_RETRIES=99 said "must be a whole number", and HTTP_PORT
  // or TRANSFER_HISTORY_SIZE out of range did not say which range either.
  it('names the allowed range in every numeric error, whatever is wrong with the value', () => {
    const numeric: [variable: string, range: string, bad: string[]][] = [
      ['ARI_REQUEST_TIMEOUT_MS', 'a whole number of milliseconds from 100 to 60000', ['soon', '99', '60001', '150.5']],
      ['ARI_RECONNECT_MAX_MS', 'a whole number of milliseconds from 100 to 300000', ['x', '99', '300001', '-1.5']],
      ['ROUTING_TIMEOUT', 'a number of seconds from 1 to 600', ['x', '0.5', '601']],
      ['TRANSFER_TIMEOUT', 'a number of seconds from 0.1 to 600', ['x', '0.05', '601']],
      ['TRANSFER_POLICY_TIMEOUT_MS', 'a whole number of milliseconds from 50 to 30000', ['x', '49', '30001', '60.5']],
      ['HTTP_PORT', 'a port number from 0 to 65535', ['http', '-1', '65536', '80.5']],
      ['WEBHOOK_TIMEOUT_MS', 'a whole number of milliseconds from 100 to 60000', ['x', '99', '60001', '100.5']],
      ['WEBHOOK_RETRIES', 'a whole number from 0 to 20', ['many', '-1', '99', '2.5']],
      ['SHUTDOWN_GRACE_MS', 'a whole number of milliseconds from 0 to 600000', ['x', '-1', '600001', '0.5']],
      ['TRANSFER_HISTORY_SIZE', 'a whole number from 0 to 100000', ['x', '-1', '100001', '1.5']],
    ];
    for (const [variable, range, bad] of numeric) {
      for (const value of bad) expect(problemsOf({ ...base, [variable]: value }), `${variable}=${value}`).toEqual([`${variable} must be ${range}`]);
    }
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

describe('HTTP and webhook settings', () => {
  it('refuses a non-loopback HTTP_HOST without a token', () => {
    expect(problemsOf({ ...base, HTTP_HOST: '0.0.0.0' })).toEqual([
      'HTTP_HOST 0.0.0.0 is not a loopback address: set HTTP_TOKEN to protect the HTTP API, or bind to a loopback address (127.0.0.1, ::1, localhost)',
    ]);
    expect(loadConfig({ ...base, HTTP_HOST: '0.0.0.0', HTTP_TOKEN: 'a-long-enough-token' }).http).toEqual({
      host: '0.0.0.0',
      port: 8080,
      token: 'a-long-enough-token',
    });
    expect(loadConfig({ ...base, HTTP_HOST: '::1' }).http.host).toBe('::1');
  });

  // Was a bug: HTTP_HOST=[::1] was refused as "not a loopback address".
  it('accepts every loopback HTTP_HOST without a token, an IPv6 one also in brackets (dropped for listen)', () => {
    const loopback: [given: string, host: string][] = [
      ['[::1]', '::1'],
      ['::1', '::1'],
      ['0:0:0:0:0:0:0:1', '0:0:0:0:0:0:0:1'],
      ['[0:0:0:0:0:0:0:1]', '0:0:0:0:0:0:0:1'],
      ['::ffff:127.0.0.1', '::ffff:127.0.0.1'],
      ['127.0.0.1', '127.0.0.1'],
      ['127.1.2.3', '127.1.2.3'],
      ['127.255.255.254', '127.255.255.254'],
      ['localhost', 'localhost'],
      ['LOCALHOST', 'LOCALHOST'],
    ];
    for (const [given, host] of loopback) expect(loadConfig({ ...base, HTTP_HOST: given }).http.host, given).toBe(host);
    for (const outside of ['0.0.0.0', '::', '[::]', '128.0.0.1', '127.0.0.256', '10.0.0.1', '::2', '::ffff:10.0.0.1', 'pbx.example.com', 'localhost.example.com']) {
      expect(problemsOf({ ...base, HTTP_HOST: outside })[0], outside).toMatch(/^HTTP_HOST \S+ is not a loopback address: set HTTP_TOKEN/);
    }
    expect(loadConfig({ ...base, HTTP_HOST: '[::]', HTTP_TOKEN: 'a-long-enough-token' }).http.host).toBe('::');
    expect(problemsOf({ ...base, HTTP_HOST: '[127.0.0.1]' })).toEqual([
      'HTTP_HOST must be a host name or an IP address; only an IPv6 address goes in brackets, e.g. [::1]',
    ]);
  });

  it('requires a secret to sign webhook bodies', () => {
    expect(problemsOf({ ...base, TRANSFER_ACTION_HOOK: 'http://127.0.0.1:9/a' })).toEqual([
      'WEBHOOK_SECRET is required when TRANSFER_EVENT_HOOK or TRANSFER_ACTION_HOOK is set (webhook bodies are signed)',
    ]);
    expect(problemsOf({ ...base, TRANSFER_EVENT_HOOK: 'mailto:x' })).toEqual(['TRANSFER_EVENT_HOOK must be an http(s) URL']);
    expect(problemsOf({ ...base, HTTP_PORT: '70000' })).toEqual(['HTTP_PORT must be a port number from 0 to 65535']);
    expect(problemsOf({ ...base, WEBHOOK_SECRET: 'short' })).toEqual(['WEBHOOK_SECRET must be at least 16 characters']);
  });
});

describe('describeConfig', () => {
  it('shows patterns as text and hides the password and webhook credentials', () => {
    const logs = captureLogs();
    const config = loadConfig({ ...base, TRANSFER_DENY: '1900.*', TRANSFER_POLICY_URL: 'https://hook:t0ken@policy.example/check?k=v' });
    logs.logger.info({ config: describeConfig(config) }, 'configuration loaded');
    expect(logs.lines[0]).toMatchObject({ config: { transfer: { deny: ['^(?:1900.*)$'], policyUrl: 'https://policy.example/check' } } });
    expect(logs.text()).not.toContain('s3cret-pw');
    expect(logs.text()).not.toContain('t0ken');
  });
});
