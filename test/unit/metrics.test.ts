// Metrics: the Prometheus text a scrape gets, and the REST client's
// per-request observer hook that feeds the ARI request metrics.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { register as globalRegistry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AriRestClient, type AriRequestRecord } from '../../src/ari/rest-client.js';
import { Metrics } from '../../src/metrics.js';
import type { TransferSummary } from '../../src/transfer/observer.js';

function summary(over: Partial<TransferSummary> = {}): TransferSummary {
  return {
    transferId: 't1',
    kind: 'attended',
    sourceChannelId: 'c1',
    destination: '1003',
    result: 'completed',
    reason: undefined,
    sipfrags: [100, 200],
    bridgeIds: [],
    durationMs: 120,
    ...over,
  };
}

/** The sample lines of the exposition, without HELP/TYPE comments. */
async function samples(m: Metrics): Promise<string[]> {
  return (await m.text()).split('\n').filter((l) => l && !l.startsWith('#'));
}

describe('Metrics', () => {
  it('counts finished transfers by kind and result, every combination starting at 0', async () => {
    const m = new Metrics();
    m.finished(summary());
    m.finished(summary({ kind: 'blind', result: 'failed', durationMs: 30_000 }));
    m.finished(summary({ kind: 'blind', result: 'failed', durationMs: 2 }));
    const lines = await samples(m);
    expect(lines).toEqual(
      expect.arrayContaining([
        'ari_transfer_transfers_total{kind="attended",result="completed"} 1',
        'ari_transfer_transfers_total{kind="blind",result="failed"} 2',
        'ari_transfer_transfers_total{kind="blind",result="rejected"} 0',
        'ari_transfer_transfers_total{kind="attended",result="rejected"} 0',
        'ari_transfer_transfer_duration_seconds_bucket{le="0.25",kind="attended",result="completed"} 1',
        'ari_transfer_transfer_duration_seconds_bucket{le="0.005",kind="blind",result="failed"} 1',
        'ari_transfer_transfer_duration_seconds_bucket{le="30",kind="blind",result="failed"} 2',
        'ari_transfer_transfer_duration_seconds_sum{kind="attended",result="completed"} 0.12',
        'ari_transfer_transfer_duration_seconds_count{kind="blind",result="failed"} 2',
      ]),
    );
  });

  it('counts ARI requests by operation and status, timeouts and network errors included', async () => {
    const m = new Metrics();
    m.ariRequest({ operation: 'channels.transferProgress', outcome: 204, durationMs: 3 });
    m.ariRequest({ operation: 'channels.transferProgress', outcome: 404, durationMs: 2 });
    m.ariRequest({ operation: 'channels.hangup', outcome: 'timeout', durationMs: 5000 });
    m.ariRequest({ operation: 'channels.hangup', outcome: 'network', durationMs: 1 });
    const lines = await samples(m);
    expect(lines).toEqual(
      expect.arrayContaining([
        'ari_transfer_ari_requests_total{operation="channels.transferProgress",status="204"} 1',
        'ari_transfer_ari_requests_total{operation="channels.transferProgress",status="404"} 1',
        'ari_transfer_ari_requests_total{operation="channels.hangup",status="timeout"} 1',
        'ari_transfer_ari_requests_total{operation="channels.hangup",status="network"} 1',
        'ari_transfer_ari_request_duration_seconds_count{operation="channels.transferProgress"} 2',
        'ari_transfer_ari_request_duration_seconds_bucket{le="5",operation="channels.hangup"} 2',
      ]),
    );
  });

  it('counts WebSocket reconnections', async () => {
    const m = new Metrics();
    expect(await samples(m)).toContain('ari_transfer_websocket_reconnects_total 0');
    m.websocketReconnected();
    m.websocketReconnected();
    expect(await samples(m)).toContain('ari_transfer_websocket_reconnects_total 2');
  });

  it('reads the registry and the transfers in flight at scrape time, once per scrape', async () => {
    const m = new Metrics();
    let counts = { channels: 4, bridges: 2, callIds: 4 };
    let reads = 0;
    let fail = false;
    let inFlight = 1;
    m.track({
      registryCounts: async () => {
        reads++;
        if (fail) throw new Error('store down');
        return counts;
      },
      transfersInFlight: () => inFlight,
    });
    expect(await samples(m)).toEqual(
      expect.arrayContaining(['ari_transfer_registry_channels 4', 'ari_transfer_registry_bridges 2', 'ari_transfer_transfers_in_flight 1']),
    );
    expect(reads).toBe(1);
    counts = { channels: 1, bridges: 0, callIds: 1 };
    inFlight = 0;
    expect(await samples(m)).toEqual(
      expect.arrayContaining(['ari_transfer_registry_channels 1', 'ari_transfer_registry_bridges 0', 'ari_transfer_transfers_in_flight 0']),
    );
    // A store that cannot answer fails nothing: the last values stay.
    fail = true;
    expect(await samples(m)).toEqual(expect.arrayContaining(['ari_transfer_registry_channels 1', 'ari_transfer_registry_bridges 0']));
  });

  it('has the default process metrics, on its own registry, never the global one', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.finished(summary());
    const text = await a.text();
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_heap_size_total_bytes \d/m);
    expect(a.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await samples(b)).toContain('ari_transfer_transfers_total{kind="attended",result="completed"} 0');
    expect(await globalRegistry.metrics()).not.toContain('ari_transfer_');
  });
});

describe('AriRestClient observer hook', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      const path = req.url!.split('?')[0]!;
      if (path.endsWith('/slow/transfer_progress')) return void setTimeout(() => res.writeHead(204).end(), 500);
      if (path.endsWith('/ok/transfer_progress')) return void res.writeHead(204).end();
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Channel not found"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  function client(base: string, seen: AriRequestRecord[]) {
    return new AriRestClient({ url: base, username: 'u', password: 'p', timeoutMs: 100, observer: (r) => seen.push(r) });
  }

  it('reports each request with its operation, status or failure, and duration', async () => {
    const seen: AriRequestRecord[] = [];
    const rest = client(url, seen);
    await rest.transferProgress('ok', 'channel_progress');
    await expect(rest.transferProgress('gone', 'channel_answered')).rejects.toMatchObject({ status: 404 });
    await expect(rest.transferProgress('slow', 'channel_answered')).rejects.toMatchObject({ kind: 'timeout' });
    await expect(client('http://127.0.0.1:1', seen).hangup('x')).rejects.toMatchObject({ kind: 'network' });
    expect(seen.map((r) => [r.operation, r.outcome])).toEqual([
      ['channels.transferProgress', 204],
      ['channels.transferProgress', 404],
      ['channels.transferProgress', 'timeout'],
      ['channels.hangup', 'network'],
    ]);
    for (const r of seen) expect(r.durationMs).toBeGreaterThanOrEqual(0);
    expect(seen[2]!.durationMs).toBeGreaterThanOrEqual(90);
  });

  it('never lets a failing observer fail the request', async () => {
    const rest = new AriRestClient({
      url,
      username: 'u',
      password: 'p',
      timeoutMs: 100,
      observer: () => {
        throw new Error('observer bug');
      },
    });
    await expect(rest.transferProgress('ok', 'channel_progress')).resolves.toBeUndefined();
    await expect(rest.transferProgress('gone', 'channel_progress')).rejects.toMatchObject({ status: 404 });
  });
});
