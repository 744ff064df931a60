// REST over the events WebSocket (Asterisk 22.4+): RESTRequest frames in, RESTResponse
// frames out, shaped as recorded from Asterisk 22.10.1; the same pipeline as HTTP
// requests (injections, request log, order), one request at a time per socket.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AriEmulator } from './index.js';
import { ari, connectEvents, sleep, type EventClient, type WireEvent } from './test-helpers.js';

let emu: AriEmulator;
let events: EventClient;

beforeEach(async () => {
  emu = await AriEmulator.start();
  events = await connectEvents(emu);
});
afterEach(async () => {
  await events.close();
  await emu.close();
});

interface RequestFields {
  method: string;
  uri: string;
  query_strings?: { name: string; value: string }[];
  content_type?: string;
  message_body?: string;
}

let seq = 0;

/** Sends a RESTRequest on `client` (ids `t<n>`/`r<n>`) without waiting; returns its request_id. */
function sendRequest(client: EventClient, fields: RequestFields): string {
  seq++;
  client.send({ type: 'RESTRequest', transaction_id: `t${seq}`, request_id: `r${seq}`, ...fields });
  return `r${seq}`;
}

const responseTo = (client: EventClient, requestId: string, timeoutMs?: number): Promise<WireEvent> =>
  client.waitFor('RESTResponse', (e) => e.request_id === requestId, 0, timeoutMs);

/** One RESTRequest on `client` (default: the test's socket) and its RESTResponse. */
function rest(fields: RequestFields, client: EventClient = events): Promise<WireEvent> {
  return responseTo(client, sendRequest(client, fields));
}

const bodyOf = (frame: WireEvent): unknown => JSON.parse(frame.message_body as string);
const indexOf = (client: EventClient, match: (e: WireEvent) => boolean): number => client.events.findIndex(match);
const bridgeCreated = (id: string) => (e: WireEvent) => e.type === 'BridgeCreated' && (e.bridge as { id: string }).id === id;

function answeredCall(endpoint = 'alice', exten = '100'): string {
  const id = emu.phoneCalls({ endpoint, exten }).id;
  emu.answer(id);
  return id;
}

describe('RESTRequest / RESTResponse frames', () => {
  it('GET: ids echoed, uri without its query, the app, the body as a JSON string equal to the HTTP answer', async () => {
    const id = answeredCall();
    events.send({
      type: 'RESTRequest',
      transaction_id: 'tx-1',
      request_id: 'rq-1',
      method: 'GET',
      uri: `channels/${id}/variable?variable=CHANNEL(name)`,
    });
    const frame = await responseTo(events, 'rq-1');
    expect(Object.keys(frame)).toEqual([
      'type',
      'transaction_id',
      'request_id',
      'status_code',
      'reason_phrase',
      'uri',
      'content_type',
      'message_body',
      'application',
      'timestamp',
      'asterisk_id',
    ]);
    expect(frame).toEqual({
      type: 'RESTResponse',
      transaction_id: 'tx-1',
      request_id: 'rq-1',
      status_code: 200,
      reason_phrase: 'OK',
      uri: `channels/${id}/variable`,
      content_type: 'application/json',
      message_body: JSON.stringify({ value: emu.channel(id)?.name }),
      application: 'ari-transfer',
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/),
      asterisk_id: '02:fc:00:00:00:01',
    });
    const snapshot = await rest({ method: 'GET', uri: `channels/${id}` });
    expect(bodyOf(snapshot)).toEqual((await ari(emu, 'GET', `/channels/${id}`)).body);
    expect(bodyOf(await rest({ method: 'GET', uri: 'asterisk/ping' }))).toMatchObject({ ping: 'pong', asterisk_id: '02:fc:00:00:00:01' });
  });

  it('query parameters from query_strings, from the uri, and from both', async () => {
    const byList = await rest({
      method: 'POST',
      uri: 'bridges/b1',
      query_strings: [
        { name: 'type', value: 'mixing' },
        { name: 'name', value: 'from list' },
      ],
    });
    expect(byList).toMatchObject({ status_code: 200, uri: 'bridges/b1' });
    expect(bodyOf(byList)).toMatchObject({ id: 'b1', bridge_type: 'mixing', name: 'from list' });
    const byUri = await rest({ method: 'POST', uri: 'bridges/b2?type=holding&name=a%20b' });
    expect(byUri).toMatchObject({ status_code: 200, uri: 'bridges/b2' });
    expect(bodyOf(byUri)).toMatchObject({ id: 'b2', bridge_type: 'holding', name: 'a b' });
    const both = await rest({ method: 'POST', uri: 'bridges/b3?type=holding', query_strings: [{ name: 'name', value: 'mixed' }] });
    expect(bodyOf(both)).toMatchObject({ id: 'b3', bridge_type: 'holding', name: 'mixed' });

    const id = answeredCall();
    expect(await rest({ method: 'DELETE', uri: `channels/${id}?reason=busy` })).toMatchObject({ status_code: 204, uri: `channels/${id}` });
    expect(await events.waitFor('ChannelDestroyed', (e) => (e.channel as { id: string }).id === id)).toMatchObject({ cause: 17 });
  });

  it('a JSON body (originate with variables) and a form body (set a variable)', async () => {
    const originated = await rest({
      method: 'POST',
      uri: 'channels',
      query_strings: [
        { name: 'endpoint', value: 'PJSIP/1001' },
        { name: 'app', value: emu.app },
      ],
      content_type: 'application/json',
      message_body: JSON.stringify({ variables: { A: '1' } }),
    });
    expect(originated.status_code).toBe(200);
    const id = (bodyOf(originated) as { id: string }).id;
    await events.waitFor('StasisStart', (e) => (e.channel as { id: string }).id === id);
    expect(bodyOf(await rest({ method: 'GET', uri: `channels/${id}/variable?variable=A` }))).toEqual({ value: '1' });

    const set = await rest({
      method: 'POST',
      uri: `channels/${id}/variable`,
      content_type: 'application/x-www-form-urlencoded',
      message_body: 'variable=FOO&value=bar%20baz',
    });
    expect(set.status_code).toBe(204);
    expect(bodyOf(await rest({ method: 'GET', uri: `channels/${id}/variable`, query_strings: [{ name: 'variable', value: 'FOO' }] }))).toEqual({
      value: 'bar baz',
    });
  });

  it('204: no content_type and no message_body', async () => {
    const id = emu.phoneCalls({ endpoint: 'alice', exten: '100' }).id;
    events.send({ type: 'RESTRequest', transaction_id: 'z', request_id: 'z', method: 'POST', uri: `channels/${id}/answer` });
    const frame = await responseTo(events, 'z');
    expect(Object.keys(frame)).toEqual(['type', 'transaction_id', 'request_id', 'status_code', 'reason_phrase', 'uri', 'application', 'timestamp', 'asterisk_id']);
    expect(frame).toMatchObject({ status_code: 204, reason_phrase: 'No Content', uri: `channels/${id}/answer`, application: 'ari-transfer' });
    expect(emu.channel(id)?.state).toBe('Up');
  });

  it("errors: Asterisk's status and message; a leading slash is 405 \"Invalid method\"", async () => {
    expect(await rest({ method: 'POST', uri: 'channels/nope/answer' })).toMatchObject({
      status_code: 404,
      reason_phrase: 'Not Found',
      uri: 'channels/nope/answer',
      content_type: 'application/json',
      message_body: '{"message":"Channel not found"}',
    });
    emu.createBridge({ id: 'b1' });
    expect(await rest({ method: 'GET', uri: '/bridges/b1' })).toMatchObject({
      status_code: 405,
      reason_phrase: 'Method Not Allowed',
      uri: '/bridges/b1',
      content_type: 'application/json',
      message_body: '{"message":"Invalid method"}',
    });
  });

  it('junk, and RESTRequests without transaction_id or request_id, get no answer; the socket still answers', async () => {
    events.send('not json');
    events.send({ type: 'RESTRequest', request_id: 'no-tx', method: 'GET', uri: 'asterisk/ping' });
    events.send({ type: 'RESTRequest', transaction_id: 'no-rq', method: 'GET', uri: 'asterisk/ping' });
    expect(await rest({ method: 'GET', uri: 'asterisk/ping' })).toMatchObject({ status_code: 200 });
    await sleep(20);
    expect(events.events.filter((e) => e.type === 'RESTResponse')).toHaveLength(1);
    expect(emu.requests).toHaveLength(1);
  });

  it("the request log shows them with via: 'websocket'; HTTP requests are logged as before", async () => {
    await rest({ method: 'GET', uri: 'channels/nope' });
    await ari(emu, 'GET', '/channels/nope');
    await rest({ method: 'GET', uri: '/channels' });
    await rest({ method: 'POST', uri: 'bridges/x?name=a%20b' });
    expect(emu.requests).toEqual([
      { method: 'GET', path: '/channels/nope', query: {}, status: 404, via: 'websocket' },
      { method: 'GET', path: '/channels/nope', query: {}, status: 404 },
      { method: 'GET', path: '//channels', query: {}, status: 405, via: 'websocket' },
      { method: 'POST', path: '/bridges/x', query: { name: 'a b' }, status: 200, via: 'websocket' },
    ]);
  });
});

describe('one request at a time per socket, through the same pipeline as HTTP', () => {
  for (const effect of ['on-response', 'on-arrival'] as const) {
    it(`delayNext (${effect}) holds up the next request on the same socket, not HTTP or another socket`, async () => {
      const other = await connectEvents(emu, { app: 'other' });
      emu.delayNext({ method: 'POST', path: /^\/bridges\/slow$/, delayMs: 150, effect });
      const sentAt = performance.now();
      const a = sendRequest(events, { method: 'POST', uri: 'bridges/slow' });
      const b = sendRequest(events, { method: 'GET', uri: 'asterisk/ping' });
      // Meanwhile HTTP and another socket are answered at once.
      expect((await ari(emu, 'GET', '/asterisk/ping')).status).toBe(200);
      expect(await rest({ method: 'GET', uri: 'asterisk/ping' }, other)).toMatchObject({ status_code: 200, application: 'other' });
      expect(events.events.some((e) => e.type === 'RESTResponse')).toBe(false);
      if (effect === 'on-arrival') await events.waitFor('BridgeCreated');
      else expect(emu.bridge('slow')).toBeUndefined();

      const bAnswer = await responseTo(events, b);
      expect(performance.now() - sentAt).toBeGreaterThanOrEqual(145);
      const aAnswer = await responseTo(events, a);
      expect(aAnswer).toMatchObject({ status_code: 200, uri: 'bridges/slow' });
      expect(bAnswer).toMatchObject({ status_code: 200, uri: 'asterisk/ping' });
      expect(events.events.indexOf(aAnswer)).toBeLessThan(events.events.indexOf(bAnswer));
      expect(emu.requests.map((r) => [r.method, r.path, r.via ?? 'http', r.injected ?? '-'])).toEqual([
        ['GET', '/asterisk/ping', 'http', '-'],
        ['GET', '/asterisk/ping', 'websocket', '-'],
        ['POST', '/bridges/slow', 'websocket', 'delay'],
        ['GET', '/asterisk/ping', 'websocket', '-'],
      ]);
      await other.close();
    });
  }

  it('a failed request does not stop the next; failNext applies to WebSocket requests', async () => {
    emu.failNext({ method: 'POST', path: /^\/bridges\/b1$/, status: 500 });
    const failed = sendRequest(events, { method: 'POST', uri: 'bridges/b1' });
    const again = sendRequest(events, { method: 'POST', uri: 'bridges/b1' });
    expect(await responseTo(events, failed)).toMatchObject({
      status_code: 500,
      reason_phrase: 'Internal Server Error',
      message_body: '{"message":"Internal Server Error"}',
    });
    expect(await responseTo(events, again)).toMatchObject({ status_code: 200 });
    expect(emu.requests.map((r) => [r.status, r.injected, r.via])).toEqual([
      [500, 'failure', 'websocket'],
      [200, undefined, 'websocket'],
    ]);
    expect(emu.bridge('b1')).toBeDefined();
  });

  it('beforeNext runs just before a WebSocket request is carried out', async () => {
    const id = answeredCall();
    emu.createBridge({ id: 'b1' });
    emu.beforeNext({ method: 'POST', path: /\/addChannel$/, query: { channel: id }, run: () => emu.phoneHangsUp(id) });
    expect(await rest({ method: 'POST', uri: `bridges/b1/addChannel?channel=${id}` })).toMatchObject({
      status_code: 400,
      message_body: '{"message":"Channel not found"}',
    });
  });

  it('respondFirst: the RESTResponse frame comes before the held events, eventsAfterMs after it', async () => {
    emu.respondFirst({ method: 'POST', path: /^\/bridges\/late$/, eventsAfterMs: 60 });
    const answer = await rest({ method: 'POST', uri: 'bridges/late' });
    const answeredAt = performance.now();
    expect(answer.status_code).toBe(200);
    expect(events.events.some(bridgeCreated('late'))).toBe(false);
    await events.waitFor('BridgeCreated');
    expect(performance.now() - answeredAt).toBeGreaterThanOrEqual(50);
    expect(indexOf(events, bridgeCreated('late'))).toBeGreaterThan(events.events.indexOf(answer));
    expect(emu.requests).toEqual([{ method: 'POST', path: '/bridges/late', query: {}, status: 200, order: 'response-first', via: 'websocket' }]);
  });

  it("seeded order mode: on the same socket, a response-first request's events come after its RESTResponse", async () => {
    await events.close();
    await emu.close();
    emu = await AriEmulator.start({ orderSeed: 42 });
    events = await connectEvents(emu);
    const ids = Array.from({ length: 16 }, (_, i) => `b${i}`);
    for (const id of ids) {
      await rest({ method: 'POST', uri: `bridges/${id}` });
      await events.waitFor('BridgeCreated', (e) => (e.bridge as { id: string }).id === id);
    }
    const orders = emu.requests.map((r) => r.order ?? 'events-first');
    expect(orders).toContain('response-first');
    expect(orders).toContain('events-first');
    const seen = ids.map((id) => {
      const response = indexOf(events, (e) => e.type === 'RESTResponse' && e.uri === `bridges/${id}`);
      return response < indexOf(events, bridgeCreated(id)) ? 'response-first' : 'events-first';
    });
    expect(seen).toEqual(orders);
  });
});

describe('a socket that goes, an emulator that closes', () => {
  it('dropWebSockets: the request being carried out still takes effect (on-arrival: at once), the ones behind it never', async () => {
    emu.delayNext({ method: 'POST', path: /^\/bridges\/first$/, delayMs: 80, effect: 'on-arrival' });
    sendRequest(events, { method: 'POST', uri: 'bridges/first' });
    sendRequest(events, { method: 'POST', uri: 'bridges/second' });
    await emu.waitForEvent('BridgeCreated');
    emu.dropWebSockets();
    await sleep(150);
    expect(emu.bridge('first')).toBeDefined();
    expect(emu.bridge('second')).toBeUndefined();
    expect(events.events.some((e) => e.type === 'RESTResponse')).toBe(false);
    expect(emu.requests.map((r) => [r.path, r.injected])).toEqual([['/bridges/first', 'delay']]);
  });

  it('dropWebSockets: an on-response delayed request is still carried out when due, as for an HTTP client that gave up', async () => {
    emu.delayNext({ method: 'POST', path: /^\/bridges\/first$/, delayMs: 80 });
    sendRequest(events, { method: 'POST', uri: 'bridges/first' });
    sendRequest(events, { method: 'POST', uri: 'bridges/second' });
    await sleep(30); // both frames have reached the emulator
    emu.dropWebSockets();
    expect(emu.bridge('first')).toBeUndefined();
    await emu.waitFor(() => emu.bridge('first') !== undefined);
    await sleep(30);
    expect(emu.bridge('second')).toBeUndefined();
    expect(events.events.some((e) => e.type === 'RESTResponse')).toBe(false);
    expect(emu.requests.map((r) => [r.path, r.injected])).toEqual([['/bridges/first', 'delay']]);
  });

  it('closing the emulator drops a pending request: never carried out, never answered', async () => {
    emu.delayNext({ method: 'POST', path: /^\/bridges\/never$/, delayMs: 50 });
    sendRequest(events, { method: 'POST', uri: 'bridges/never' });
    await sleep(20);
    await emu.close();
    await sleep(80);
    expect(emu.bridge('never')).toBeUndefined();
    expect(emu.requests).toEqual([]);
    expect(events.events.some((e) => e.type === 'RESTResponse')).toBe(false);
  });
});
