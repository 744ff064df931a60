import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { WebhookConfig } from '../../src/config.js';
import type { TransferStart, TransferStep, TransferSummary } from '../../src/transfer/observer.js';
import { computeSignature, signatureHeader, verifySignature, WebhookNotifier, type WebhookNotifierOptions } from '../../src/webhooks/index.js';
import { captureLogs, type CapturedLogs } from '../helpers/log-capture.js';

const SECRET = 'whsec-0123456789abcdef';

// ---------------------------------------------------------------- receiver

interface Received {
  n: number;
  headers: IncomingHttpHeaders;
  url: string;
  raw: string;
  body: Record<string, unknown>;
  /** Set when the client went away before we answered. */
  aborted: boolean;
  status?: number;
}

/** Answers the request: a status, 'hang' (never), or a promise of a status. */
type Handler = (r: Received) => number | 'hang' | Promise<number>;

class Receiver {
  readonly requests: Received[] = [];
  readonly answered: Received[] = [];
  private server!: Server;
  private port = 0;

  constructor(public handler: Handler = () => 200) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const r: Received = {
          n: this.requests.length + 1,
          headers: req.headers,
          url: req.url ?? '',
          raw,
          body: JSON.parse(raw) as Record<string, unknown>,
          aborted: false,
        };
        res.on('close', () => {
          if (!res.writableFinished) r.aborted = true;
        });
        this.requests.push(r);
        void this.answer(r, res);
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  url(path = '/hook'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  bodies(): Record<string, unknown>[] {
    return this.requests.map((r) => r.body);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async answer(r: Received, res: ServerResponse): Promise<void> {
    const status = await this.handler(r);
    if (status === 'hang' || res.destroyed) return;
    r.status = status;
    this.answered.push(r);
    res.writeHead(status, { 'content-type': 'text/plain' }).end('ok');
  }
}

/** A gate the test opens: requests wait on it. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

// ---------------------------------------------------------------- fixtures

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function receiver(handler?: Handler): Promise<Receiver> {
  const r = await new Receiver(handler).start();
  cleanups.push(() => r.stop());
  return r;
}

function notifier(
  hooks: Partial<WebhookConfig>,
  options: WebhookNotifierOptions = {},
): { notifier: WebhookNotifier; logs: CapturedLogs } {
  const logs = captureLogs('debug');
  const config: WebhookConfig = {
    eventHook: undefined,
    actionHook: undefined,
    secret: SECRET,
    timeoutMs: 2_000,
    retries: 5,
    ...hooks,
  };
  const n = new WebhookNotifier(config, logs.logger, { retryBaseMs: 10, ...options });
  cleanups.push(() => n.close(0));
  return { notifier: n, logs };
}

function start(transferId: string, extra: Partial<TransferStart> = {}): TransferStart {
  return {
    transferId,
    kind: 'blind',
    origin: 'refer',
    sourceChannelId: `chan-${transferId}`,
    sourceCallId: `call-${transferId}@10.0.0.1`,
    destination: '1003',
    startedAt: '2025-01-01T10:00:00.000Z',
    ...extra,
  };
}

function step(transferId: string, name: string, extra: Partial<TransferStep> = {}): TransferStep {
  return {
    transferId,
    at: '2025-01-01T10:00:00.100Z',
    step: name,
    level: 'info',
    message: `${name} happened`,
    fields: { bridgeId: 'bridge-1' },
    ...extra,
  };
}

function summary(transferId: string, extra: Partial<TransferSummary> = {}): TransferSummary {
  return {
    transferId,
    kind: 'blind',
    sourceChannelId: `chan-${transferId}`,
    destination: '1003',
    result: 'completed',
    reason: undefined,
    sipfrags: [100, 200],
    bridgeIds: ['bridge-1'],
    durationMs: 1234.5,
    ...extra,
  };
}

const NOW = Date.parse('2025-01-01T10:00:01.500Z');
const fixedClock = () => NOW;

function header(r: Received, name: string): string {
  const v = r.headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(',') : (v ?? '');
}

function errorsAndWarnings(logs: CapturedLogs): Record<string, unknown>[] {
  // pino levels: 40 warn, 50 error.
  return logs.lines.filter((l) => Number(l.level) >= 40);
}

// ---------------------------------------------------------------- tests

describe('signatures', () => {
  const body = '{"type":"transfer.finished","transferId":"abc"}';
  const ts = Math.floor(NOW / 1000);

  it('signs "<timestamp>.<raw body>" with HMAC-SHA256, as v1=<hex>', async () => {
    const { createHmac } = await import('node:crypto');
    const hex = createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex');
    expect(computeSignature(SECRET, ts, body)).toBe(hex);
    expect(signatureHeader(SECRET, ts, body)).toBe(`v1=${hex}`);
  });

  it('verifies within the tolerance, either way, and rejects what is off', () => {
    const sig = signatureHeader(SECRET, ts, body);
    const at = (sec: number) => ({ toleranceSec: 300, now: () => (ts + sec) * 1000 });
    expect(verifySignature(SECRET, String(ts), body, sig, at(0))).toBe(true);
    expect(verifySignature(SECRET, String(ts), Buffer.from(body), sig, at(299))).toBe(true);
    expect(verifySignature(SECRET, String(ts), body, sig, at(-299))).toBe(true);
    expect(verifySignature(SECRET, String(ts), body, sig, at(301))).toBe(false);
    expect(verifySignature(SECRET, String(ts), body, sig, at(-301))).toBe(false);
    // Another secret is rotated in: any of several signatures may match.
    expect(verifySignature(SECRET, ts, body, `v1=${'0'.repeat(64)}, ${sig}`, at(0))).toBe(true);
    expect(verifySignature(SECRET, ts, body, `v0=${sig.slice(3)}`, at(0))).toBe(false);
    expect(verifySignature(SECRET, ts, body, 'v1=abc', at(0))).toBe(false);
    expect(verifySignature(SECRET, ts, body, undefined, at(0))).toBe(false);
    expect(verifySignature(SECRET, undefined, body, sig, at(0))).toBe(false);
    expect(verifySignature(SECRET, 'soon', body, sig, at(0))).toBe(false);
    // The timestamp is signed: moving it forward breaks the signature.
    expect(verifySignature(SECRET, String(ts + 60), body, sig, at(60))).toBe(false);
  });
});

describe('WebhookNotifier: action hook', () => {
  it('delivers exactly one signed transfer.finished per finished transfer, with the documented body', async () => {
    const rx = await receiver();
    const { notifier: n, logs } = notifier({ actionHook: rx.url() }, { now: fixedClock });

    n.started(start('t1'));
    n.step(step('t1', 'requested'));
    n.finished(summary('t1'));
    n.finished(summary('t2', { kind: 'attended', destination: undefined, result: 'failed', reason: 'no bridge', sipfrags: [100, 503], bridgeIds: [] }));
    await n.close(5_000);

    expect(rx.requests).toHaveLength(2);
    const byId = new Map(rx.requests.map((r) => [r.body.transferId, r]));
    expect(byId.get('t1')!.body).toEqual({
      type: 'transfer.finished',
      transferId: 't1',
      kind: 'blind',
      destination: '1003',
      result: 'completed',
      reason: null,
      sipfrags: [100, 200],
      sourceChannelId: 'chan-t1',
      bridgeIds: ['bridge-1'],
      durationMs: 1234.5,
      finishedAt: '2025-01-01T10:00:01.500Z',
    });
    expect(byId.get('t2')!.body).toMatchObject({ kind: 'attended', destination: null, result: 'failed', reason: 'no bridge', sipfrags: [100, 503], bridgeIds: [] });

    for (const r of rx.requests) {
      expect(r.url).toBe('/hook');
      expect(header(r, 'content-type')).toBe('application/json');
      expect(header(r, 'X-Ari-Transfer-Attempt')).toBe('1');
      expect(header(r, 'X-Ari-Transfer-Delivery')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const ts = header(r, 'X-Ari-Transfer-Timestamp');
      expect(ts).toBe(String(Math.floor(NOW / 1000)));
      const sig = header(r, 'X-Ari-Transfer-Signature');
      expect(sig).toMatch(/^v1=[0-9a-f]{64}$/);
      const opts = { toleranceSec: 300, now: fixedClock };
      expect(verifySignature(SECRET, ts, r.raw, sig, opts)).toBe(true);
      // Tampered body, wrong secret, replay after the tolerance.
      expect(verifySignature(SECRET, ts, r.raw.replace('"completed"', '"rejected"').replace('"failed"', '"completed"'), sig, opts)).toBe(false);
      expect(verifySignature('another-secret-0123456', ts, r.raw, sig, opts)).toBe(false);
      expect(verifySignature(SECRET, ts, r.raw, sig, { toleranceSec: 300, now: () => NOW + 301_000 })).toBe(false);
    }
    expect(header(rx.requests[0]!, 'X-Ari-Transfer-Delivery')).not.toBe(header(rx.requests[1]!, 'X-Ari-Transfer-Delivery'));
    expect(n.stats()).toEqual({ action: { queued: 0, inFlight: 0, delivered: 2, failed: 0, dropped: 0 } });
    expect(errorsAndWarnings(logs)).toEqual([]);
  });

  it('signs with a timestamp read at each attempt, from the real clock by default', async () => {
    const rx = await receiver();
    const { notifier: n } = notifier({ actionHook: rx.url() });
    n.finished(summary('t1'));
    await n.close(5_000);
    const r = rx.requests[0]!;
    expect(Math.abs(Number(header(r, 'X-Ari-Transfer-Timestamp')) - Date.now() / 1000)).toBeLessThan(5);
    expect(verifySignature(SECRET, header(r, 'X-Ari-Transfer-Timestamp'), r.raw, header(r, 'X-Ari-Transfer-Signature'))).toBe(true);
    expect(Date.parse(String(r.body.finishedAt))).toBeGreaterThan(Date.now() - 5_000);
  });
});

describe('WebhookNotifier: event hook', () => {
  it('delivers transfer.started then each step, in order per transfer, even across a retry', async () => {
    const rx = await receiver((r) => (r.body.transferId === 'A' && r.body.step === 'planned' && header(r, 'X-Ari-Transfer-Attempt') === '1' ? 500 : 200));
    const { notifier: n, logs } = notifier({ eventHook: rx.url('/events') }, { now: fixedClock });

    n.started(start('A'));
    n.started(start('B', { kind: 'attended', destination: undefined, sourceCallId: undefined }));
    for (const name of ['requested', 'planned', 'moved', 'progress', 'hung-up']) {
      n.step(step('A', name));
      n.step(step('B', name, { level: 'warn', fields: { n: 1n, err: 'boom' } }));
    }
    n.finished(summary('A')); // no action hook: nothing sent
    await n.close(5_000);

    const of = (id: string) => rx.answered.filter((r) => r.status === 200).map((r) => r.body).filter((b) => b.transferId === id);
    for (const id of ['A', 'B']) {
      expect(of(id).map((b) => b.seq)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(of(id).map((b) => b.type)).toEqual(['transfer.started', ...Array(5).fill('transfer.step')]);
      expect(of(id).slice(1).map((b) => b.step)).toEqual(['requested', 'planned', 'moved', 'progress', 'hung-up']);
    }
    // A's 'moved' was not sent before 'planned' got through on its retry.
    const sentA = rx.requests.filter((r) => r.body.transferId === 'A').map((r) => `${String(r.body.step ?? 'start')}#${header(r, 'X-Ari-Transfer-Attempt')}`);
    expect(sentA).toEqual(['start#1', 'requested#1', 'planned#1', 'planned#2', 'moved#1', 'progress#1', 'hung-up#1']);

    expect(of('A')[0]).toEqual({
      type: 'transfer.started',
      transferId: 'A',
      seq: 1,
      kind: 'blind',
      origin: 'refer',
      sourceChannelId: 'chan-A',
      sourceCallId: 'call-A@10.0.0.1',
      destination: '1003',
      startedAt: '2025-01-01T10:00:00.000Z',
    });
    expect(of('B')[0]).toMatchObject({ kind: 'attended', sourceCallId: null, destination: null });
    expect(of('B')[2]).toEqual({
      type: 'transfer.step',
      transferId: 'B',
      seq: 3,
      step: 'planned',
      level: 'warn',
      message: 'planned happened',
      fields: { n: '1', err: 'boom' },
      at: '2025-01-01T10:00:00.100Z',
    });
    for (const r of rx.requests) {
      expect(verifySignature(SECRET, header(r, 'X-Ari-Transfer-Timestamp'), r.raw, header(r, 'X-Ari-Transfer-Signature'), { now: fixedClock })).toBe(true);
    }
    expect(rx.requests.some((r) => r.body.type === 'transfer.finished')).toBe(false);
    expect(errorsAndWarnings(logs).map((l) => l.msg)).toEqual(['event webhook delivery attempt 1 failed: receiver answered 500; retrying']);
  });

  it('keeps delivering other transfers while one transfer waits on a slow answer', async () => {
    const slow = gate();
    const rx = await receiver(async (r) => {
      if (r.body.transferId === 'slow') await slow.wait;
      return 200;
    });
    const { notifier: n } = notifier({ eventHook: rx.url() });
    n.started(start('slow'));
    n.step(step('slow', 'requested'));
    n.started(start('fast'));
    n.step(step('fast', 'requested'));
    n.step(step('fast', 'planned'));

    await vi.waitFor(() => expect(rx.answered.filter((r) => r.body.transferId === 'fast')).toHaveLength(3));
    // The slow transfer's second event waits for its first.
    expect(rx.requests.filter((r) => r.body.transferId === 'slow')).toHaveLength(1);
    slow.open();
    await n.close(5_000);
    expect(rx.answered.filter((r) => r.body.transferId === 'slow').map((r) => r.body.seq)).toEqual([1, 2]);
  });
});

describe('WebhookNotifier: retries', () => {
  it('retries 500s and delivers on attempt 3 with the same delivery id, each attempt signed', async () => {
    const rx = await receiver((r) => (r.n <= 2 ? 500 : 200));
    const { notifier: n, logs } = notifier({ actionHook: rx.url() }, { now: fixedClock });
    n.finished(summary('t1'));
    await vi.waitFor(() => expect(n.stats().action?.delivered).toBe(1));

    expect(rx.requests.map((r) => header(r, 'X-Ari-Transfer-Attempt'))).toEqual(['1', '2', '3']);
    expect(new Set(rx.requests.map((r) => header(r, 'X-Ari-Transfer-Delivery'))).size).toBe(1);
    expect(new Set(rx.requests.map((r) => r.raw)).size).toBe(1);
    for (const r of rx.requests) {
      expect(verifySignature(SECRET, header(r, 'X-Ari-Transfer-Timestamp'), r.raw, header(r, 'X-Ari-Transfer-Signature'), { now: fixedClock })).toBe(true);
    }
    const problems = errorsAndWarnings(logs);
    expect(problems.map((l) => [l.level, l.attempt, l.status])).toEqual([
      [40, 1, 500],
      [40, 2, 500],
    ]);
    expect(problems[0]).toMatchObject({ hook: 'action', url: rx.url(), transferId: 't1', type: 'transfer.finished', maxAttempts: 6 });
    expect(Number(problems[1]!.retryInMs)).toBeGreaterThanOrEqual(10); // 2nd retry: 20 ms jittered into [10, 20]
    expect(Number(problems[1]!.retryInMs)).toBeLessThanOrEqual(20);
  });

  it('retries 429 too', async () => {
    const rx = await receiver((r) => (r.n === 1 ? 429 : 204));
    const { notifier: n } = notifier({ actionHook: rx.url() });
    n.finished(summary('t1'));
    await vi.waitFor(() => expect(n.stats().action?.delivered).toBe(1));
    expect(rx.requests).toHaveLength(2);
  });

  it('does not retry a 400, and says it is a configuration problem', async () => {
    const rx = await receiver(() => 400);
    const { notifier: n, logs } = notifier({ actionHook: rx.url() });
    n.finished(summary('t1'));
    await vi.waitFor(() => expect(n.stats().action?.failed).toBe(1));
    await new Promise((r) => setTimeout(r, 100));
    expect(rx.requests).toHaveLength(1);
    const problems = errorsAndWarnings(logs);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ level: 50, status: 400, attempt: 1, deliveryId: header(rx.requests[0]!, 'X-Ari-Transfer-Delivery') });
    expect(String(problems[0]!.msg)).toMatch(/not retried.*400.*configuration problem/);
  });

  it('retries an answer that does not come within the timeout, then gives up with an error; logs no credentials', async () => {
    const rx = await receiver(() => 'hang');
    const url = rx.url('/hook').replace('http://', 'http://hookuser:hookpass@') + '?token=querysecret';
    const { notifier: n, logs } = notifier({ actionHook: url, timeoutMs: 100, retries: 2 });
    const t0 = performance.now();
    n.finished(summary('t1'));
    await vi.waitFor(() => expect(n.stats().action?.failed).toBe(1), { timeout: 5_000 });
    const elapsed = performance.now() - t0;

    expect(rx.requests.map((r) => header(r, 'X-Ari-Transfer-Attempt'))).toEqual(['1', '2', '3']);
    expect(elapsed).toBeGreaterThanOrEqual(300);
    // The URL's credentials are used (HTTP basic), never logged.
    expect(header(rx.requests[0]!, 'authorization')).toBe(`Basic ${Buffer.from('hookuser:hookpass').toString('base64')}`);
    const problems = errorsAndWarnings(logs);
    expect(problems.map((l) => l.level)).toEqual([40, 40, 50]);
    expect(problems[2]).toMatchObject({ attempt: 3, code: 'TIMEOUT', url: rx.url('/hook') });
    expect(String(problems[2]!.msg)).toBe('action webhook delivery given up after 3 attempts: no answer within 100 ms');
    for (const secret of ['hookpass', 'querysecret', SECRET, 'hookuser']) expect(logs.text()).not.toContain(secret);
  });

  it('retries a refused connection, then gives up', async () => {
    const rx = await receiver();
    const url = rx.url();
    await rx.stop();
    const { notifier: n, logs } = notifier({ actionHook: url, retries: 1 });
    n.finished(summary('t1'));
    await vi.waitFor(() => expect(n.stats().action?.failed).toBe(1));
    expect(errorsAndWarnings(logs).map((l) => [l.level, l.code])).toEqual([
      [40, 'ECONNREFUSED'],
      [50, 'ECONNREFUSED'],
    ]);
  });
});

describe('WebhookNotifier: never blocks a transfer', () => {
  it('returns from finished() at once while the receiver holds its answer; delivers after', async () => {
    const release = gate();
    const rx = await receiver(async () => {
      await release.wait;
      return 200;
    });
    const { notifier: n } = notifier({ actionHook: rx.url() });

    const t0 = performance.now();
    const returned = n.finished(summary('t1'));
    const took = performance.now() - t0;
    expect(returned).toBeUndefined();
    expect(took).toBeLessThan(50);
    // Not even sent yet: the request starts on a later turn of the event loop.
    expect(rx.requests).toHaveLength(0);

    await vi.waitFor(() => expect(rx.requests).toHaveLength(1));
    expect(rx.answered).toHaveLength(0);
    // More transfers finish meanwhile, just as fast.
    const t1 = performance.now();
    for (let i = 2; i <= 50; i++) n.finished(summary(`t${i}`));
    expect(performance.now() - t1).toBeLessThan(100);
    await vi.waitFor(() => expect(rx.requests).toHaveLength(4));
    expect(n.stats().action).toMatchObject({ queued: 46, inFlight: 4, delivered: 0 });

    release.open();
    await vi.waitFor(() => expect(n.stats().action?.delivered).toBe(50));
    expect(rx.answered.length).toBe(50);
  });
});

describe('WebhookNotifier: bounded queue', () => {
  it('drops the oldest waiting deliveries when full, with a warning and a counter', async () => {
    const rx = await receiver();
    const { notifier: n, logs } = notifier({ eventHook: rx.url() }, { maxQueued: 3 });
    n.started(start('t1'));
    for (const name of ['s2', 's3', 's4', 's5', 's6']) n.step(step('t1', name));
    expect(n.stats().event).toMatchObject({ queued: 3, dropped: 3 });
    await n.close(5_000);

    expect(rx.bodies().map((b) => b.seq)).toEqual([4, 5, 6]);
    expect(n.stats().event).toMatchObject({ queued: 0, delivered: 3, dropped: 3 });
    const warnings = errorsAndWarnings(logs);
    // The first drop at once; the following ones summed (here at close).
    expect(warnings.map((l) => l.msg)).toEqual([
      'event webhook queue full (3 waiting): dropped the oldest delivery',
      'event webhook queue full (3 waiting): dropped 2 more of the oldest deliveries',
    ]);
    expect(warnings[0]).toMatchObject({ level: 40, transferId: 't1', type: 'transfer.started', droppedTotal: 1 });
    expect(warnings[1]).toMatchObject({ dropped: 2, droppedTotal: 3 });
  });

  it('keeps the bound while deliveries are in flight', async () => {
    const release = gate();
    const rx = await receiver(async () => {
      await release.wait;
      return 200;
    });
    const { notifier: n } = notifier({ actionHook: rx.url() }, { maxQueued: 2, concurrency: 1 });
    n.finished(summary('t1'));
    await vi.waitFor(() => expect(rx.requests).toHaveLength(1));
    for (let i = 2; i <= 5; i++) n.finished(summary(`t${i}`));
    expect(n.stats().action).toMatchObject({ queued: 2, inFlight: 1, dropped: 2 });
    release.open();
    await n.close(5_000);
    expect(rx.bodies().map((b) => b.transferId)).toEqual(['t1', 't4', 't5']);
  });
});

describe('WebhookNotifier: close', () => {
  it('waits for queued deliveries within the grace', async () => {
    const rx = await receiver(async () => {
      await new Promise((r) => setTimeout(r, 100));
      return 200;
    });
    const { notifier: n, logs } = notifier({ eventHook: rx.url(), actionHook: rx.url('/actions') });
    n.started(start('t1'));
    n.step(step('t1', 'requested'));
    n.finished(summary('t1'));
    await n.close(5_000);
    expect(n.stats()).toEqual({
      event: { queued: 0, inFlight: 0, delivered: 2, failed: 0, dropped: 0 },
      action: { queued: 0, inFlight: 0, delivered: 1, failed: 0, dropped: 0 },
    });
    expect(errorsAndWarnings(logs)).toEqual([]);
  });

  it('drops what is left after the grace, naming how many, aborts attempts in flight and refuses later events', async () => {
    const rx = await receiver(() => 'hang');
    const { notifier: n, logs } = notifier({ actionHook: rx.url(), timeoutMs: 10_000 }, { concurrency: 2 });
    n.finished(summary('t1'));
    n.finished(summary('t2'));
    n.finished(summary('t3'));
    await vi.waitFor(() => expect(rx.requests).toHaveLength(2));

    const t0 = performance.now();
    await n.close(150);
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(140);
    expect(took).toBeLessThan(1_000);

    const problems = errorsAndWarnings(logs);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ level: 40, dropped: 3, graceMs: 150 });
    expect(String(problems[0]!.msg)).toBe('action webhook: 3 deliveries still pending after the 150 ms shutdown grace: dropped');
    expect(n.stats().action).toEqual({ queued: 0, inFlight: 0, delivered: 0, failed: 0, dropped: 3 });
    await vi.waitFor(() => expect(rx.requests.every((r) => r.aborted)).toBe(true));

    n.finished(summary('t4'));
    await new Promise((r) => setTimeout(r, 50));
    expect(rx.requests).toHaveLength(2);
    expect(n.stats().action?.dropped).toBe(4);
    expect(logs.messages()).toContain('action webhook delivery dropped: shutting down');
  });

  it('interrupts a retry backoff at the end of the grace', async () => {
    const rx = await receiver(() => 503);
    const { notifier: n, logs } = notifier({ actionHook: rx.url() }, { retryBaseMs: 60_000 });
    n.finished(summary('t1'));
    await vi.waitFor(() => expect(rx.requests).toHaveLength(1));
    const t0 = performance.now();
    await n.close(50);
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(logs.messages().at(-1)).toBe('action webhook: 1 deliveries still pending after the 50 ms shutdown grace: dropped');
  });
});

describe('WebhookNotifier: configuration', () => {
  it('does nothing without hooks', () => {
    const { notifier: n } = notifier({});
    expect(n.enabled).toBe(false);
    n.started(start('t1'));
    n.finished(summary('t1'));
    expect(n.stats()).toEqual({});
  });

  it('refuses a hook without a secret', () => {
    const logs = captureLogs();
    expect(
      () => new WebhookNotifier({ eventHook: 'http://127.0.0.1:1/x', actionHook: undefined, secret: undefined, timeoutMs: 100, retries: 0 }, logs.logger),
    ).toThrow(/WEBHOOK_SECRET/);
  });
});
