// REST over the events WebSocket against a loopback server that plays
// Asterisk 22.10's part as recorded: RESTRequest frames in, RESTResponse
// frames out on the same socket; an "old Asterisk" mode ignores them.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { AriEventStream } from '../../src/ari/event-stream.js';
import { AriRestClient } from '../../src/ari/rest-client.js';
import { ariFailure } from '../helpers/ari-failure.js';
import { WebSocketRest } from '../../src/ari/ws-rest.js';
import { createLogger } from '../../src/logger.js';

type Frame = Record<string, unknown>;
type Answer = { status: number; reason: string; body?: unknown } | 'silence';

let http: Server;
let wss: WebSocketServer;
let url: string;
/** RESTRequest frames received, and the paths of HTTP requests. */
let frames: Frame[];
let httpPaths: string[];
/** false: an Asterisk before 22.4, which ignores RESTRequest frames. */
let understands: boolean;
let answer: (f: Frame) => Answer;
let serverSockets: WebSocket[];

beforeEach(async () => {
  frames = [];
  httpPaths = [];
  understands = true;
  serverSockets = [];
  answer = () => ({ status: 200, reason: 'OK', body: { ping: 'pong' } });
  http = createServer((req, res) => {
    httpPaths.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify([]));
  });
  wss = new WebSocketServer({ server: http });
  wss.on('connection', (ws) => {
    serverSockets.push(ws);
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString()) as Frame;
      if (f.type !== 'RESTRequest' || !understands) return;
      frames.push(f);
      const a = answer(f);
      if (a === 'silence') return;
      const reply: Frame = { type: 'RESTResponse', transaction_id: f.transaction_id, request_id: f.request_id, status_code: a.status, reason_phrase: a.reason, uri: f.uri };
      if (a.body !== undefined) Object.assign(reply, { content_type: 'application/json', message_body: JSON.stringify(a.body) });
      ws.send(JSON.stringify(reply));
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterEach(async () => {
  for (const s of serverSockets) s.terminate();
  wss.close();
  await new Promise<void>((r) => http.close(() => r()));
});

async function connect(timeoutMs = 300) {
  const logger = createLogger('silent');
  const webSocket = new WebSocketRest({ timeoutMs, probeTimeoutMs: 200, stallMs: 100, logger });
  const rest = new AriRestClient({ url, username: 'u', password: 'p', timeoutMs, webSocket });
  let opened!: () => void;
  const open = new Promise<void>((r) => (opened = r));
  const stream = new AriEventStream(
    { url, username: 'u', password: 'p', app: 'app', subscribeAll: false, reconnectMaxMs: 60_000, reconnectInitialMs: 60_000, rest: webSocket, logger },
    { onEvent: () => undefined, onOpen: () => opened(), onClose: () => undefined },
  );
  stream.start();
  await open;
  return { webSocket, rest, stream };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
}

describe('REST over the events WebSocket', () => {
  it('probes each new connection, then sends requests on it: uri without a leading slash, query strings, JSON body', async () => {
    const { webSocket, rest, stream } = await connect();
    await until(() => webSocket.available);
    expect(frames[0]).toMatchObject({ method: 'GET', uri: 'asterisk/ping' });
    answer = () => ({ status: 200, reason: 'OK', body: { id: 'leg-1', name: 'PJSIP/carol-00000001' } });
    const channel = await rest.originate({ channelId: 'leg 1', endpoint: 'PJSIP/carol', app: 'app', timeoutSec: 35, variables: { MARK: 'x' } });
    expect(channel).toEqual({ id: 'leg-1', name: 'PJSIP/carol-00000001' });
    const sent = frames[1]!;
    expect(sent).toMatchObject({
      type: 'RESTRequest',
      method: 'POST',
      uri: 'channels/leg%201',
      query_strings: [
        { name: 'endpoint', value: 'PJSIP/carol' },
        { name: 'app', value: 'app' },
        { name: 'timeout', value: '35' },
      ],
      content_type: 'application/json',
    });
    expect(JSON.parse(sent.message_body as string)).toEqual({ variables: { MARK: 'x' } });
    expect(sent.request_id).toBe(sent.transaction_id);
    expect(httpPaths).toEqual([]);
    await stream.stop();
  });

  it("turns Asterisk's error answers into the same AriError as over HTTP, and 204 into undefined", async () => {
    const { webSocket, rest, stream } = await connect();
    await until(() => webSocket.available);
    answer = (f) => (f.uri === 'channels/gone/answer' ? { status: 404, reason: 'Not Found', body: { message: 'Channel not found' } } : { status: 204, reason: 'No Content' });
    const err = await ariFailure(rest.answer('gone'));
    expect([err.operation, err.kind, err.status, err.detail]).toEqual(['channels.answer', 'http', 404, 'Channel not found']);
    await expect(rest.hangup('there')).resolves.toBeUndefined();
    await stream.stop();
  });

  it('an Asterisk that ignores the frames (before 22.4): the probe gets no answer and requests go over HTTP', async () => {
    understands = false;
    const { webSocket, rest, stream } = await connect();
    await new Promise((r) => setTimeout(r, 300)); // past the 200 ms probe
    expect(webSocket.available).toBe(false);
    await expect(rest.listChannels()).resolves.toEqual([]);
    expect(httpPaths).toEqual(['GET /ari/channels']);
    await stream.stop();
  });

  it('a request left unanswered times out, and while it stays unanswered (Asterisk is stuck on it) new requests take HTTP', async () => {
    const { webSocket, rest, stream } = await connect();
    await until(() => webSocket.available);
    answer = () => 'silence';
    const timedOut = await ariFailure(rest.getChannel('slow'));
    expect([timedOut.kind, timedOut.operation]).toEqual(['timeout', 'channels.get']);
    expect(webSocket.available).toBe(false);
    await expect(rest.listChannels()).resolves.toEqual([]);
    expect(httpPaths).toEqual(['GET /ari/channels']);
    expect(frames.map((f) => f.uri)).toEqual(['asterisk/ping', 'channels/slow']);
    await stream.stop();
  });

  it('a request in flight when the socket drops fails as a network error, and HTTP takes over', async () => {
    const { webSocket, rest, stream } = await connect();
    await until(() => webSocket.available);
    answer = () => 'silence';
    const inFlight = ariFailure(rest.getChannel('lost'));
    await until(() => frames.some((f) => f.uri === 'channels/lost'));
    for (const s of serverSockets) s.terminate();
    const lost = await inFlight;
    expect(lost.kind).toBe('network');
    expect(webSocket.available).toBe(false);
    await expect(rest.listChannels()).resolves.toEqual([]);
    expect(httpPaths).toEqual(['GET /ari/channels']);
    await stream.stop();
  });

  it('a graceful stop waits for the answers to requests sent on the socket before closing it', async () => {
    const { webSocket, rest, stream } = await connect();
    await until(() => webSocket.available);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    answer = (f) => {
      // Answered only once the stop has begun.
      void held.then(() => {
        for (const s of serverSockets) s.send(JSON.stringify({ type: 'RESTResponse', transaction_id: f.transaction_id, request_id: f.request_id, status_code: 204, reason_phrase: 'No Content', uri: f.uri }));
      });
      return 'silence';
    };
    const answering = rest.answer('caller');
    await until(() => frames.some((f) => f.uri === 'channels/caller/answer'));
    const stopping = stream.stop();
    release();
    await expect(answering).resolves.toBeUndefined();
    await stopping;
    expect(webSocket.available).toBe(false);
  });
});
