import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { backoffDelay } from '../../src/ari/backoff.js';
import { AriEventStream } from '../../src/ari/event-stream.js';
import type { AriEvent } from '../../src/ari/models.js';
import { parseEventFrame } from '../../src/ari/parse-event.js';
import { captureLogs, type CapturedLogs } from '../helpers/log-capture.js';

let http: Server;
let wss: WebSocketServer;
let url: string;
let sockets: WebSocket[];
let upgrades: { url: string; authorization: string | undefined }[];
let stream: AriEventStream | undefined;

beforeEach(async () => {
  sockets = [];
  upgrades = [];
  http = createServer();
  wss = new WebSocketServer({ server: http });
  wss.on('connection', (ws, req) => {
    upgrades.push({ url: req.url!, authorization: req.headers.authorization });
    sockets.push(ws);
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterEach(async () => {
  await stream?.stop();
  stream = undefined;
  for (const ws of wss.clients) ws.terminate();
  await new Promise<void>((r) => wss.close(() => r()));
  await new Promise<void>((r) => http.close(() => r()));
});

function open(logs: CapturedLogs, received: AriEvent[], counters = { opens: 0, closes: 0 }) {
  stream = new AriEventStream(
    { url, username: 'asterisk', password: 'pw-never-logged', app: 'ari-transfer', subscribeAll: true, reconnectInitialMs: 20, reconnectMaxMs: 50, logger: logs.logger },
    { onEvent: (e) => received.push(e), onOpen: () => counters.opens++, onClose: () => counters.closes++ },
  );
  stream.start();
  return counters;
}

const stasisStart = JSON.stringify({
  type: 'StasisStart', timestamp: 't', application: 'ari-transfer', args: [],
  channel: { id: 'c1', name: 'PJSIP/alice-00000001', state: 'Ring', protocol_id: '1@h', caller: { name: '', number: '' } },
});

describe('AriEventStream', () => {
  it('connects with the app in the query and the credentials in the header only', async () => {
    const logs = captureLogs();
    open(logs, []);
    await expect.poll(() => upgrades.length).toBe(1);
    expect(upgrades[0]!.url).toBe('/ari/events?app=ari-transfer&subscribeAll=true');
    expect(upgrades[0]!.authorization).toBe(`Basic ${Buffer.from('asterisk:pw-never-logged').toString('base64')}`);
    await expect.poll(() => stream!.connected).toBe(true);
    expect(logs.text()).not.toContain('pw-never-logged');
  });

  it('delivers known events, ignores unknown ones and drops malformed frames without dying', async () => {
    const logs = captureLogs();
    const received: AriEvent[] = [];
    open(logs, received);
    await expect.poll(() => sockets.length).toBe(1);
    sockets[0]!.send('{not json');
    sockets[0]!.send(JSON.stringify({ type: 'DeviceStateChanged', application: 'ari-transfer' }));
    sockets[0]!.send(JSON.stringify({ type: 'ChannelTransfer', referred_by: {} }));
    sockets[0]!.send(stasisStart);
    await expect.poll(() => received.length).toBe(1);
    expect(received[0]!.type).toBe('StasisStart');
    const warnings = logs.lines.filter((l) => l.msg === 'dropped a malformed ARI event').map((l) => l.reason);
    expect(warnings).toEqual(['not JSON', 'ChannelTransfer: no refer_to.requested_destination']);
    expect(logs.lines.some((l) => l.msg === 'ignored an ARI event type this service does not use' && l.type === 'DeviceStateChanged')).toBe(true);
  });

  it('reconnects after the socket drops and announces each connection', async () => {
    const logs = captureLogs();
    const received: AriEvent[] = [];
    const counters = open(logs, received);
    await expect.poll(() => counters.opens).toBe(1);
    sockets[0]!.terminate();
    await expect.poll(() => counters.closes).toBe(1);
    await expect.poll(() => counters.opens).toBe(2);
    sockets[1]!.send(stasisStart);
    await expect.poll(() => received.length).toBe(1);
  });

  it('keeps retrying while Asterisk is unreachable', async () => {
    const logs = captureLogs();
    const counters = { opens: 0, closes: 0 };
    // Nothing listens here at first.
    await new Promise<void>((r) => wss.close(() => r()));
    await new Promise<void>((r) => http.close(() => r()));
    open(logs, [], counters);
    await expect.poll(() => logs.lines.filter((l) => l.msg === 'reconnecting to ARI events').length).toBeGreaterThanOrEqual(3);
    expect(counters.opens).toBe(0);
    // Asterisk comes back on the same port.
    const port = Number(new URL(url).port);
    http = createServer();
    wss = new WebSocketServer({ server: http });
    await new Promise<void>((r) => http.listen(port, '127.0.0.1', r));
    await expect.poll(() => counters.opens, { timeout: 3000 }).toBe(1);
  });
});

describe('backoffDelay', () => {
  it('grows exponentially, is capped, and is never zero', () => {
    const opts = { initialMs: 100, maxMs: 10_000 };
    expect(backoffDelay(0, { ...opts, random: () => 1 })).toBe(100);
    expect(backoffDelay(3, { ...opts, random: () => 1 })).toBe(800);
    expect(backoffDelay(50, { ...opts, random: () => 1 })).toBe(10_000);
    expect(backoffDelay(50, { ...opts, random: () => 0 })).toBe(1_000);
    expect(backoffDelay(0, { ...opts, random: () => 0 })).toBe(10);
  });
});

describe('parseEventFrame', () => {
  it('classifies frames', () => {
    expect(parseEventFrame(stasisStart).kind).toBe('event');
    expect(parseEventFrame('[]')).toEqual({ kind: 'malformed', reason: 'not a JSON object' });
    expect(parseEventFrame('{}')).toEqual({ kind: 'malformed', reason: 'no type' });
    expect(parseEventFrame('{"type":"Dial"}')).toEqual({ kind: 'unknown', type: 'Dial' });
    expect(parseEventFrame('{"type":"StasisStart","args":[],"channel":{"name":"x"}}')).toEqual({ kind: 'malformed', reason: 'StasisStart: channel has no id' });
    expect(parseEventFrame('{"type":"StasisStart","channel":{"id":"c","name":"x"}}')).toEqual({ kind: 'malformed', reason: 'StasisStart: args is not a list of strings' });
    expect(
      parseEventFrame(
        JSON.stringify({ type: 'ChannelTransfer', refer_to: { requested_destination: { additional_protocol_params: 'from=x' } }, referred_by: { source_channel: { id: 's', name: 'n' } } }),
      ),
    ).toEqual({ kind: 'malformed', reason: 'ChannelTransfer: requested_destination.additional_protocol_params is not a list of {parameter_name, parameter_value}' });
    expect(parseEventFrame('{"type":"ChannelEnteredBridge","bridge":{"id":"b","channels":[1]}}')).toEqual({
      kind: 'malformed',
      reason: 'ChannelEnteredBridge: bridge.channels is not a list of ids',
    });
  });
});
