import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  checkLists,
  checkLoop,
  DestinationPolicy,
  endpointOf,
  type PartyDescription,
  type PolicyConfig,
  type PolicyDecision,
  type TransferDescription,
} from '../../src/transfer/policy.js';
import { parseRegexList } from '../../src/regex-list.js';
import { captureLogs } from '../helpers/log-capture.js';

function party(endpoint: string, number: string, extra: Partial<PartyDescription> = {}): PartyDescription {
  return {
    channelId: `chan-${endpoint}`,
    name: `PJSIP/${endpoint}-0000000a`,
    endpoint,
    callId: `call-${endpoint}@10.0.0.1`,
    callerId: { name: endpoint, number },
    ...extra,
  };
}

// Bob (alice's peer) transfers Alice; 1003 is Carol's extension.
function transfer(destination: string, extra: Partial<TransferDescription> = {}): TransferDescription {
  return {
    kind: 'blind',
    destination,
    transferer: party('bob', '1002'),
    transferees: [party('alice', '1001')],
    bridgeId: 'bridge-1',
    ...extra,
  };
}

function rule(d: PolicyDecision): string | undefined {
  return d.allowed ? undefined : d.rule;
}

function detail(d: PolicyDecision): string {
  return d.allowed ? '' : d.detail;
}

describe('checkLists', () => {
  const allow = parseRegexList('1\\d{3},9\\d+', 'TRANSFER_ALLOW');
  const deny = parseRegexList('900\\d*', 'TRANSFER_DENY');

  it('lets deny win over allow', () => {
    const decision = checkLists('900123', { allow, deny });
    expect(rule(decision)).toBe('deny-list');
    expect(detail(decision)).toContain('900123');
  });

  it('allows what matches an allow pattern', () => {
    expect(checkLists('1003', { allow, deny })).toEqual({ allowed: true });
    expect(checkLists('9123', { allow, deny })).toEqual({ allowed: true });
  });

  it('refuses what is on no allow list', () => {
    expect(rule(checkLists('2003', { allow, deny }))).toBe('not-allowed');
  });

  it('allows everything not denied when the allow list is empty', () => {
    expect(checkLists('2003', { allow: [], deny })).toEqual({ allowed: true });
    expect(checkLists('carol', { allow: [], deny: [] })).toEqual({ allowed: true });
    expect(rule(checkLists('9001', { allow: [], deny }))).toBe('deny-list');
  });
});

describe('checkLoop', () => {
  it.each([
    ['1002', "transferer's own caller number"],
    ['bob', "transferer's own endpoint"],
    ['1001', 'caller number of PJSIP/alice'],
    ['alice', 'endpoint of PJSIP/alice'],
  ])('refuses %j', (d, why) => {
    const decision = checkLoop(transfer(d));
    expect(rule(decision)).toBe('loop');
    expect(detail(decision)).toContain(why);
  });

  it('allows another destination', () => {
    expect(checkLoop(transfer('1003'))).toEqual({ allowed: true });
    expect(checkLoop(transfer('carol'))).toEqual({ allowed: true });
  });

  it('ignores empty caller numbers and unknown endpoints', () => {
    const anonymous = party('x', '', { endpoint: undefined, name: 'Local/1003@ctx-00000001;1' });
    expect(checkLoop(transfer('1003', { transferer: anonymous, transferees: [anonymous] }))).toEqual({ allowed: true });
  });
});

describe('endpointOf', () => {
  it('reads the endpoint of a PJSIP channel name', () => {
    expect(endpointOf('PJSIP/alice-0000000a')).toBe('alice');
    expect(endpointOf('PJSIP/front-desk-2-00000013')).toBe('front-desk-2');
  });

  it('gives undefined for other technologies and malformed names', () => {
    expect(endpointOf('Local/1003@transfers-00000001;1')).toBeUndefined();
    expect(endpointOf('SIP/alice-0000000a')).toBeUndefined();
    expect(endpointOf('PJSIP/alice')).toBeUndefined();
    expect(endpointOf('PJSIP/-0000000a')).toBeUndefined();
  });
});

// ---- DestinationPolicy against a real webhook on loopback ----

interface Received {
  method: string;
  url: string;
  contentType: string | undefined;
  authorization: string | undefined;
  body: unknown;
}

type Responder = (res: ServerResponse) => void;

let server: Server;
let baseUrl: string;
let received: Received[];
let respond: Responder;

function listen(s: Server): Promise<number> {
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));
}

function close(s: Server): Promise<void> {
  s.closeAllConnections();
  return new Promise((resolve) => s.close(() => resolve()));
}

function json(status: number, body: unknown): Responder {
  return (res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
}

beforeEach(async () => {
  received = [];
  respond = json(200, { allow: true });
  server = createServer((req: IncomingMessage, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (raw += chunk));
    req.on('end', () => {
      received.push({
        method: req.method!,
        url: req.url!,
        contentType: req.headers['content-type'],
        authorization: req.headers.authorization,
        body: JSON.parse(raw) as unknown,
      });
      respond(res);
    });
  });
  baseUrl = `http://127.0.0.1:${await listen(server)}`;
});

afterEach(async () => {
  await close(server);
});

function policy(cfg: Partial<PolicyConfig> = {}) {
  const logs = captureLogs();
  const p = new DestinationPolicy(
    { allow: [], deny: [], webhookUrl: `${baseUrl}/policy`, webhookTimeoutMs: 2000, ...cfg },
    logs.logger,
  );
  return { policy: p, logs };
}

describe('DestinationPolicy', () => {
  it('allows when the webhook says allow, and sends it the described transfer', async () => {
    const { policy: p, logs } = policy();
    const t = transfer('1003', {
      transferees: [party('alice', '1001'), party('dave', '1004', { callId: undefined })],
    });
    expect(await p.evaluate(t)).toEqual({ allowed: true });

    expect(received).toHaveLength(1);
    const req = received[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/policy');
    expect(req.contentType).toMatch(/^application\/json/);
    expect(req.body).toEqual({
      type: 'transfer.policy',
      kind: 'blind',
      destination: '1003',
      transferer: {
        channelId: 'chan-bob',
        name: 'PJSIP/bob-0000000a',
        endpoint: 'bob',
        callId: 'call-bob@10.0.0.1',
        callerId: { name: 'bob', number: '1002' },
      },
      transferees: [
        {
          channelId: 'chan-alice',
          name: 'PJSIP/alice-0000000a',
          endpoint: 'alice',
          callId: 'call-alice@10.0.0.1',
          callerId: { name: 'alice', number: '1001' },
        },
        {
          channelId: 'chan-dave',
          name: 'PJSIP/dave-0000000a',
          endpoint: 'dave',
          callId: null,
          callerId: { name: 'dave', number: '1004' },
        },
      ],
      bridgeId: 'bridge-1',
    });

    expect(logs.lines).toHaveLength(1);
    expect(logs.lines[0]).toMatchObject({
      level: 30,
      msg: 'transfer destination allowed',
      kind: 'blind',
      destination: '1003',
      transfererChannel: 'chan-bob',
      bridgeId: 'bridge-1',
      webhook: `${baseUrl}/policy`,
    });
    expect(logs.lines[0]).not.toHaveProperty('rule');
  });

  it('denies with the webhook reason', async () => {
    respond = json(200, { allow: false, reason: 'premium rate' });
    const { policy: p, logs } = policy();
    const decision = await p.evaluate(transfer('1003'));
    expect(rule(decision)).toBe('webhook-deny');
    expect(detail(decision)).toContain('premium rate');
    expect(logs.lines[0]).toMatchObject({ level: 40, msg: 'transfer destination denied', rule: 'webhook-deny' });
  });

  it('takes the recall the webhook chooses for this transfer; a recall it cannot mean fails closed', async () => {
    respond = json(200, { allow: true, recall: '1004' });
    expect(await policy().policy.evaluate(transfer('1003'))).toEqual({ allowed: true, recall: { to: 'destination', destination: '1004' } });
    respond = json(200, { allow: true, recall: 'transferer' });
    expect(await policy().policy.evaluate(transfer('1003'))).toEqual({ allowed: true, recall: { to: 'transferer' } });
    respond = json(200, { allow: true, recall: '1004@evil' });
    expect(await policy().policy.evaluate(transfer('1003'))).toMatchObject({ allowed: false, rule: 'webhook-error' });
    respond = json(200, { allow: true, recall: 7 });
    expect(await policy().policy.evaluate(transfer('1003'))).toMatchObject({ allowed: false, rule: 'webhook-error' });
  });

  it('denies without a reason', async () => {
    respond = json(200, { allow: false });
    const { policy: p } = policy();
    expect(await p.evaluate(transfer('1003'))).toEqual({
      allowed: false,
      rule: 'webhook-deny',
      detail: 'policy webhook denied the transfer',
    });
  });

  it('fails closed on a non-2xx status', async () => {
    respond = json(500, { allow: true });
    const { policy: p, logs } = policy();
    expect(await p.evaluate(transfer('1003'))).toEqual({
      allowed: false,
      rule: 'webhook-error',
      detail: 'policy webhook answered 500',
    });
    expect(logs.lines[0]).toMatchObject({ level: 40, rule: 'webhook-error', detail: 'policy webhook answered 500' });
  });

  it('does not follow a redirect', async () => {
    respond = (res) => {
      res.writeHead(302, { location: `${baseUrl}/elsewhere` });
      res.end();
    };
    const { policy: p } = policy();
    expect(detail(await p.evaluate(transfer('1003')))).toBe('policy webhook answered 302');
    expect(received).toHaveLength(1);
  });

  it.each([
    ['malformed JSON', '{"allow": tru'],
    ['a string allow', '{"allow": "true"}'],
    ['an array', '[{"allow": true}]'],
    ['an empty body', ''],
    ['a numeric reason', '{"allow": true, "reason": 5}'],
  ])('fails closed on %s', async (_name, body) => {
    respond = json(200, body);
    const { policy: p } = policy();
    expect(await p.evaluate(transfer('1003'))).toEqual({
      allowed: false,
      rule: 'webhook-error',
      detail: 'policy webhook answered no {"allow": boolean}',
    });
  });

  it('fails closed when the webhook answers later than the timeout', async () => {
    respond = (res) => setTimeout(() => json(200, { allow: true })(res), 500);
    const { policy: p, logs } = policy({ webhookTimeoutMs: 100 });
    const decision = await p.evaluate(transfer('1003'));
    expect(decision).toEqual({ allowed: false, rule: 'webhook-error', detail: 'policy webhook timed out after 100 ms' });
    expect(logs.lines[0]).toMatchObject({ rule: 'webhook-error' });
    expect(logs.lines[0]!.durationMs as number).toBeLessThan(450);
  });

  it('fails closed when the webhook trickles its answer past the deadline', async () => {
    respond = (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"allow"');
      // Each byte arrives before the idle timeout; the whole answer does not.
      const timer = setInterval(() => res.write(' '), 40);
      setTimeout(() => {
        clearInterval(timer);
        res.end(': true}');
      }, 600);
    };
    const { policy: p } = policy({ webhookTimeoutMs: 150 });
    expect(detail(await p.evaluate(transfer('1003')))).toBe('policy webhook timed out after 150 ms');
  });

  it('fails closed when the webhook is unreachable', async () => {
    const closed = createServer();
    const port = await listen(closed);
    await close(closed);
    const { policy: p } = policy({ webhookUrl: `http://127.0.0.1:${port}/policy` });
    expect(await p.evaluate(transfer('1003'))).toEqual({
      allowed: false,
      rule: 'webhook-error',
      detail: 'policy webhook failed: ECONNREFUSED',
    });
  });

  it('never logs the credentials of the webhook URL', async () => {
    respond = json(403, {});
    const url = new URL(baseUrl);
    const logs = captureLogs();
    const p = new DestinationPolicy(
      { allow: [], deny: [], webhookUrl: `http://hook-user:s3cret-pw@${url.host}/policy?token=q-secret`, webhookTimeoutMs: 2000 },
      logs.logger,
    );
    const decision = await p.evaluate(transfer('1003'));
    expect(decision).toEqual({ allowed: false, rule: 'webhook-error', detail: 'policy webhook answered 403' });
    // The credentials are for the webhook itself.
    expect(received[0]!.authorization).toBe(`Basic ${Buffer.from('hook-user:s3cret-pw').toString('base64')}`);
    expect(logs.lines[0]).toMatchObject({ rule: 'webhook-error', webhook: `${baseUrl}/policy` });
    expect(logs.text()).not.toContain('s3cret-pw');
    expect(logs.text()).not.toContain('hook-user');
    expect(logs.text()).not.toContain('q-secret');
  });

  it('never sends an invalid destination to the webhook', async () => {
    const { policy: p, logs } = policy();
    const decision = await p.evaluate(transfer(`1003&PJSIP/evil${'X'.repeat(100)}`));
    expect(rule(decision)).toBe('invalid');
    expect(received).toHaveLength(0);
    expect(logs.lines[0]).toMatchObject({ level: 40, rule: 'invalid' });
    expect(logs.lines[0]).not.toHaveProperty('webhook');
    expect(logs.text()).not.toContain('X'.repeat(41));
  });

  it('never sends a denied-by-list destination to the webhook', async () => {
    const { policy: p, logs } = policy({
      deny: parseRegexList('900\\d*', 'TRANSFER_DENY'),
      allow: parseRegexList('1\\d{3},900\\d*', 'TRANSFER_ALLOW'),
    });
    expect(rule(await p.evaluate(transfer('900123')))).toBe('deny-list');
    expect(rule(await p.evaluate(transfer('2003')))).toBe('not-allowed');
    expect(received).toHaveLength(0);
    expect(logs.lines.map((l) => l.rule)).toEqual(['deny-list', 'not-allowed']);
  });

  it('checks loops before the webhook', async () => {
    const { policy: p, logs } = policy();
    expect(rule(await p.evaluate(transfer('bob')))).toBe('loop');
    expect(received).toHaveLength(0);
    expect(logs.lines[0]).toMatchObject({ level: 40, rule: 'loop' });
  });

  it('decides without a webhook when none is configured', async () => {
    const { policy: p, logs } = policy({ webhookUrl: undefined });
    expect(await p.evaluate(transfer('1003'))).toEqual({ allowed: true });
    expect(received).toHaveLength(0);
    expect(logs.lines[0]).toMatchObject({ level: 30, msg: 'transfer destination allowed' });
    expect(logs.lines[0]).not.toHaveProperty('webhook');
  });

  it('refuses a webhook URL that is not http(s), without echoing it', () => {
    const { logger } = captureLogs();
    const make = (webhookUrl: string) => () =>
      new DestinationPolicy({ allow: [], deny: [], webhookUrl, webhookTimeoutMs: 1000 }, logger);
    expect(make('ftp://u:pw@host/x')).toThrow('TRANSFER_POLICY_URL must be an http:// or https:// URL');
    expect(make('not a url')).toThrow('TRANSFER_POLICY_URL must be an http:// or https:// URL');
  });
});
