// The HTTP API end to end: real HTTP on loopback, the service against the
// ARI emulator. Health and readiness, the Prometheus metrics after real
// transfers, the registry's calls, the transfer history, the bearer token,
// and the process as an operator runs it.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import { AriEmulator } from '../emulator/index.js';
import { referAttended, setUpAttendedCalls, startHarness, waitUntil, type Harness, transferFinished } from './harness.js';

const TOKEN = 'test-token-0123456789abcdef';

let h: Harness | undefined;
let api: HttpServer | undefined;
afterEach(async () => {
  await api?.close();
  await h?.close();
  api = undefined;
  h = undefined;
});

async function start(opts: { env?: Record<string, string>; token?: string } = {}) {
  h = await startHarness(opts.env);
  api = await startHttpServer({ service: h.service, config: { host: '127.0.0.1', port: 0, token: opts.token }, logger: h.logs.logger });
  return { h, api };
}

async function get(path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${api!.url}${path}`, { headers });
  const text = await res.text();
  const json = res.headers.get('content-type')?.startsWith('application/json') ? (JSON.parse(text) as unknown) : undefined;
  return { status: res.status, headers: res.headers, text, json: json as any };
}

/** Sample lines of a /metrics answer. */
async function metricLines(): Promise<string[]> {
  const res = await get('/metrics');
  expect(res.status).toBe(200);
  return res.text.split('\n').filter((l) => l && !l.startsWith('#'));
}

describe('HTTP API: health', () => {
  it('/healthz answers while the process lives; /readyz follows the ARI connection', async () => {
    await start();
    expect(api!.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await get('/healthz')).toMatchObject({ status: 200, json: { status: 'ok' } });
    expect(await get('/readyz')).toMatchObject({ status: 200, json: { status: 'ready' } });

    h!.emu.refuseWebSockets(true);
    h!.emu.dropWebSockets();
    await waitUntil(() => !h!.service.ready, 'the service to notice the drop');
    const notReady = await get('/readyz');
    expect(notReady).toMatchObject({ status: 503, json: { status: 'not ready' } });
    expect(notReady.json.reason).toMatch(/not connected/);
    expect(await get('/healthz')).toMatchObject({ status: 200, json: { status: 'ok' } });

    h!.emu.refuseWebSockets(false);
    await waitUntil(() => h!.service.ready, 'the service to reconnect and resync');
    expect(await get('/readyz')).toMatchObject({ status: 200 });
    // Every connection after the first is a reconnection.
    expect(await metricLines()).toContain('ari_transfer_websocket_reconnects_total 1');
  });

  it('/readyz says why when another client takes the application over', async () => {
    await start();
    const other = new WebSocket(`${h!.emu.url.replace('http', 'ws')}/ari/events?app=ari-transfer`, {
      headers: { Authorization: `Basic ${Buffer.from('asterisk:pw-secret').toString('base64')}` },
    });
    await new Promise((resolve, reject) => other.once('open', resolve).once('error', reject));
    try {
      await waitUntil(() => !h!.service.ready, 'the service to give up readiness');
      expect(await get('/readyz')).toMatchObject({ status: 503, json: { status: 'not ready', reason: 'another ARI client took the application over' } });
    } finally {
      other.close();
    }
  });

  it('/readyz says so while the service shuts down', async () => {
    await start();
    const stopping = h!.service.stop(0);
    expect(await get('/readyz')).toMatchObject({ status: 503, json: { status: 'not ready', reason: 'shutting down' } });
    await stopping;
  });

  it('unknown routes get a JSON 404', async () => {
    await start();
    const res = await get('/nope?x=1');
    expect(res).toMatchObject({ status: 404, json: { statusCode: 404, error: 'Not Found', message: 'no route GET /nope' } });
  });
});

describe('HTTP API: metrics, calls, transfers', () => {
  it('/metrics counts an attended transfer, its ARI requests, and the registry as the emulator has it', async () => {
    await start();
    const calls = await setUpAttendedCalls(h!);
    const { sipfrags } = await referAttended(h!, calls.bobFirst.id, calls.bobConsult.id);
    expect(sipfrags).toEqual([100, 200]);
    // The registry has applied the hangups and the bridge deletion.
    const emu = h!.emu;
    await waitUntil(async () => {
      const c = await h!.service.registry.store.counts();
      return c.channels === emu.channels().length && c.bridges === emu.bridges().length;
    }, 'the registry to match the emulator');

    const res = await get('/metrics');
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const lines = res.text.split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        'ari_transfer_transfers_total{kind="attended",result="completed"} 1',
        'ari_transfer_transfers_total{kind="blind",result="completed"} 0',
        'ari_transfer_transfer_duration_seconds_count{kind="attended",result="completed"} 1',
        // channel_progress and channel_answered
        'ari_transfer_ari_requests_total{operation="channels.transferProgress",status="204"} 2',
        'ari_transfer_ari_requests_total{operation="bridges.addChannel",status="204"} 1',
        'ari_transfer_ari_request_duration_seconds_count{operation="channels.transferProgress"} 2',
        `ari_transfer_registry_channels ${emu.channels().length}`,
        `ari_transfer_registry_bridges ${emu.bridges().length}`,
        'ari_transfer_transfers_in_flight 0',
        'ari_transfer_websocket_reconnects_total 0',
      ]),
    );
    // Alice and Carol, in the consultation bridge.
    expect([emu.channels().length, emu.bridges().length]).toEqual([2, 1]);
    expect(res.text).toMatch(/^process_resident_memory_bytes \d+/m);
  });

  it('/calls shows the channels with their Call-IDs and callers, and the bridges with their members', async () => {
    await start();
    const calls = await setUpAttendedCalls(h!);
    const res = await get('/calls');
    expect(res.status).toBe(200);
    const { channels, bridges } = res.json as {
      channels: { id: string; name: string; state: string; callId: string | null; caller: unknown; bridgeId: string | null }[];
      bridges: { id: string; name: string; channelIds: string[] }[];
    };
    expect(channels.map((c) => c.id).sort()).toEqual(h!.emu.channels().map((c) => c.id).sort());
    const alice = channels.find((c) => c.id === calls.alice.id)!;
    expect(alice).toEqual({
      id: calls.alice.id,
      name: calls.alice.name,
      state: 'Up',
      callId: h!.emu.dialogOf(calls.alice.id).callId,
      caller: { name: 'Alice', number: 'alice' },
      bridgeId: calls.originalBridge,
      hangingUp: false,
    });
    for (const c of channels) {
      expect(c.callId).toBe(h!.emu.channel(c.id)!.protocolId || null);
      expect(c.bridgeId).toBe(h!.emu.channel(c.id)!.bridgeId ?? null);
    }
    expect(channels.find((c) => c.id === calls.bobConsult.id)).toMatchObject({ bridgeId: calls.consultBridge, caller: { name: 'Bob' } });
    const byId = new Map(bridges.map((b) => [b.id, b]));
    expect(byId.get(calls.originalBridge)).toMatchObject({ name: 'original-call' });
    expect(byId.get(calls.originalBridge)!.channelIds.slice().sort()).toEqual([calls.alice.id, calls.bobFirst.id].sort());
    expect(byId.get(calls.consultBridge)!.channelIds.slice().sort()).toEqual([calls.bobConsult.id, calls.carol.id].sort());
  });

  it('/transfers shows a finished transfer with its steps and sipfrags', async () => {
    await start();
    const calls = await setUpAttendedCalls(h!);
    const { summary } = await referAttended(h!, calls.bobFirst.id, calls.bobConsult.id);
    const res = await get('/transfers');
    expect(res.status).toBe(200);
    expect(res.json.inFlight).toEqual([]);
    expect(res.json.finished).toHaveLength(1);
    const t = res.json.finished[0];
    expect(t).toMatchObject({
      transferId: summary.transferId,
      kind: 'attended',
      sourceChannelId: calls.bobFirst.id,
      sourceCallId: h!.emu.dialogOf(calls.bobFirst.id).callId,
      destination: '1003',
      result: 'completed',
      reason: null,
      sipfrags: [100, 200],
      droppedSteps: 0,
    });
    const steps = t.steps.map((s: { step: string }) => s.step);
    // The 100 and the move are in flight together (the 100 is not waited for).
    expect([...steps.slice(0, 2), ...steps.slice(2, 4).sort()]).toEqual(['requested', 'plan', 'move', 'progress']);
    expect(t.steps.find((s: { step: string }) => s.step === 'progress')).toMatchObject({
      level: 'info',
      message: 'transfer progress sent',
      fields: { state: 'channel_progress', sipfrag: 100 },
    });
    expect(Date.parse(t.finishedAt)).toBeGreaterThanOrEqual(Date.parse(t.startedAt));
  });

  it('/transfers shows a blind transfer in flight while its target rings, then finished', async () => {
    await start();
    const { emu } = h!;
    const alice = emu.phoneCalls({ endpoint: 'alice', exten: '100', callerName: 'Alice' });
    const bob = emu.phoneCalls({ endpoint: 'bob', exten: '200', callerName: 'Bob' });
    emu.answer(alice.id);
    emu.answer(bob.id);
    const bridge = emu.createBridge({ name: 'call' });
    emu.addToBridge(bridge.id, alice.id);
    emu.addToBridge(bridge.id, bob.id);
    await waitUntil(async () => (await h!.service.registry.store.getBridge(bridge.id))?.channelIds.length === 2, 'the service to see the call');

    emu.setEndpoint('carol', { kind: 'no-answer' });
    const refer = emu.sendRefer(bob.id, { kind: 'blind', destination: 'carol' });
    const leg = () => emu.channels().find((c) => c.id.startsWith('transfer-'));
    await waitUntil(() => leg()?.state === 'Ringing', 'carol to ring');

    const ringing = await get('/transfers');
    expect(ringing.json.finished).toEqual([]);
    expect(ringing.json.inFlight).toHaveLength(1);
    const t = ringing.json.inFlight[0];
    expect(t).toMatchObject({ kind: 'blind', sourceChannelId: bob.id, destination: 'carol', sipfrags: [100] });
    expect(t.steps.map((s: { step: string }) => s.step)).toEqual(expect.arrayContaining(['requested', 'progress', 'policy', 'dial']));
    expect(await metricLines()).toContain('ari_transfer_transfers_in_flight 1');

    emu.phoneAnswers(leg()!.id);
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await transferFinished(h!);
    const done = await get('/transfers');
    expect(done.json.inFlight).toEqual([]);
    expect(done.json.finished).toMatchObject([{ transferId: t.transferId, kind: 'blind', result: 'completed', sipfrags: [100, 200] }]);
    expect(await metricLines()).toContain('ari_transfer_transfers_total{kind="blind",result="completed"} 1');
  });

  it('keeps TRANSFER_HISTORY_SIZE finished transfers, most recent first', async () => {
    await start({ env: { TRANSFER_HISTORY_SIZE: '2' } });
    const calls = await setUpAttendedCalls(h!);
    const unknown = { callId: 'no-such-call@192.0.2.1', fromTag: 'a', toTag: 'b' };
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const done = h!.finished.length;
      const refer = h!.emu.sendRefer(calls.bobFirst.id, { kind: 'attended', destination: '1003', replaces: unknown });
      expect(await refer.waitForTermination()).toEqual([100, 503]);
      await waitUntil(() => h!.finished.length > done, 'the transfer to finish');
      ids.push(h!.finished[done]!.transferId);
    }
    const res = await get('/transfers');
    expect(res.json.finished.map((t: { transferId: string; result: string }) => [t.transferId, t.result])).toEqual([
      [ids[2], 'rejected'],
      [ids[1], 'rejected'],
    ]);
  });
});

describe('HTTP API: bearer token', () => {
  it('guards every route but the health checks', async () => {
    await start({ token: TOKEN });
    for (const path of ['/metrics', '/calls', '/transfers', '/nope']) {
      const missing = await get(path);
      expect(missing.status, path).toBe(401);
      expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
      expect(missing.json).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
      const wrong = await get(path, { authorization: `Bearer ${TOKEN}x` });
      expect(wrong.status, path).toBe(401);
      expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
      expect((await get(path, { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` })).status).toBe(401);
    }
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await get('/metrics', auth)).status).toBe(200);
    expect(await get('/calls', auth)).toMatchObject({ status: 200, json: { channels: [], bridges: [] } });
    expect(await get('/transfers', auth)).toMatchObject({ status: 200, json: { inFlight: [], finished: [] } });
    expect((await get('/nope', auth)).status).toBe(404);
    // The health checks stay open, for probes that hold no secret.
    expect((await get('/healthz')).status).toBe(200);
    expect((await get('/readyz')).status).toBe(200);
    // Requests, and their Authorization header, are never logged.
    expect(h!.logs.text()).not.toContain(TOKEN);
  });
});

// ---- the process, as `npm start` runs it ----

const entry = new URL('../../src/main.ts', import.meta.url).pathname;
const healthcheck = new URL('../../docker/ari-transfer/healthcheck.mjs', import.meta.url).pathname;
const hasIpv6Loopback = Object.values(networkInterfaces()).some((addrs) => addrs?.some((a) => a.internal && a.family === 'IPv6' && a.address === '::1'));

function spawnService(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    env: { PATH: process.env.PATH ?? '', ARI_USERNAME: 'asterisk', ARI_PASSWORD: 'pw-secret', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { child, out, exited };
}

const logLines = (stdout: string) =>
  stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('HTTP API: the process', () => {
  it('listens on HTTP_PORT=0, logs the bound address, serves /healthz, and exits 0 on SIGTERM', async () => {
    const emu = await AriEmulator.start({ app: 'ari-transfer', username: 'asterisk', password: 'pw-secret' });
    const svc = spawnService({ ARI_URL: emu.url, HTTP_PORT: '0', HTTP_TOKEN: TOKEN });
    try {
      await waitUntil(() => svc.out.stdout.includes('HTTP API listening'), 'the HTTP API to listen', 10_000);
      const line = logLines(svc.out.stdout).find((l) => String(l.msg).startsWith('HTTP API listening'))!;
      expect(line.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const url = line.url as string;
      expect(line.port).toBe(Number(new URL(url).port));

      const health = await fetch(`${url}/healthz`);
      expect([health.status, await health.json()]).toEqual([200, { status: 'ok' }]);
      await waitUntil(async () => (await fetch(`${url}/readyz`)).status === 200, 'the service to be ready', 10_000);
      expect((await fetch(`${url}/calls`)).status).toBe(401);
      expect((await fetch(`${url}/calls`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);

      svc.child.kill('SIGTERM');
      expect(await svc.exited).toBe(0);
      const messages = logLines(svc.out.stdout).map((l) => l.msg);
      expect(messages.indexOf('stopped')).toBeGreaterThan(messages.indexOf('shutting down'));
      expect(svc.out.stdout).not.toContain(TOKEN);
      expect(svc.out.stdout).not.toContain('pw-secret');
      // Closed once the service stopped.
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    } finally {
      svc.child.kill('SIGKILL');
      await emu.close();
    }
  });

  // Was a bug: HTTP_HOST=[::1] was refused at start as not a loopback address.
  it.runIf(hasIpv6Loopback)('HTTP_HOST=[::1]: no token needed, listens on ::1, and the image\'s health check reaches it', async () => {
    const emu = await AriEmulator.start({ app: 'ari-transfer', username: 'asterisk', password: 'pw-secret' });
    const svc = spawnService({ ARI_URL: emu.url, HTTP_HOST: '[::1]', HTTP_PORT: '0' });
    try {
      await waitUntil(() => svc.out.stdout.includes('HTTP API listening') || svc.child.exitCode !== null, 'the HTTP API to listen', 20_000);
      expect(svc.out.stderr).toBe('');
      const line = logLines(svc.out.stdout).find((l) => String(l.msg).startsWith('HTTP API listening'))!;
      expect(line.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
      const url = String(line.url);
      const health = await fetch(`${url}/healthz`);
      expect([health.status, await health.json()]).toEqual([200, { status: 'ok' }]);
      await waitUntil(async () => (await fetch(`${url}/readyz`)).status === 200, 'the service to be ready', 10_000);

      const check = spawn(process.execPath, [healthcheck], {
        env: { PATH: process.env.PATH ?? '', HTTP_HOST: '[::1]', HTTP_PORT: String(line.port) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let checkErr = '';
      check.stderr.on('data', (d: Buffer) => (checkErr += d.toString()));
      expect([await new Promise<number | null>((resolve) => check.on('close', resolve)), checkErr]).toEqual([0, '']);

      svc.child.kill('SIGTERM');
      expect(await svc.exited).toBe(0);
    } finally {
      svc.child.kill('SIGKILL');
      await emu.close();
    }
    // Two node processes to start (the service, the health check): slow on a busy machine.
  }, 40_000);

  it('a port already in use: one clear error line, exit 1, and ARI left alone', async () => {
    const emu = await AriEmulator.start({ app: 'ari-transfer', username: 'asterisk', password: 'pw-secret' });
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const svc = spawnService({ ARI_URL: emu.url, HTTP_PORT: String(port) });
      expect(await svc.exited).toBe(1);
      const errors = logLines(svc.out.stdout).filter((l) => (l.level as number) >= 50);
      expect(errors).toHaveLength(1);
      expect(errors[0]!.msg).toBe(`cannot listen on 127.0.0.1:${port}: the port is already in use (HTTP_HOST, HTTP_PORT)`);
      expect(svc.out.stderr).toBe('');
      // It never connected: a running instance keeps its Stasis application.
      expect(emu.requests).toEqual([]);
      expect(svc.out.stdout).not.toContain('ARI events connected');
    } finally {
      blocker.close();
      await emu.close();
    }
  });
});
