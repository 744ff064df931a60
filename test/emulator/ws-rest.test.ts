// REST over the events WebSocket (Asterisk 22.4+): RESTRequest frames in, RESTResponse
// frames out, shaped as recorded from Asterisk 22.10.1; the same pipeline as HTTP
// requests (injections, request log, order), one request at a time per socket. Frames
// that are not requests get Asterisk 22.10.1's 400s (session_read, parse_rest_request_msg).

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { AriEmulator } from './index.js';
import { PASS, USER, ari, connectEvents, sleep, type EventClient, type WireEvent } from './test-helpers.js';

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

  it('RESTRequests without transaction_id or request_id are carried out, answered with empty ids', async () => {
    const before = events.events.length;
    events.send({ type: 'RESTRequest', method: 'POST', uri: 'bridges/no-ids' });
    events.send({ type: 'RESTRequest', transaction_id: 7, request_id: null, method: 'GET', uri: 'asterisk/ping' });
    const last = await rest({ method: 'GET', uri: 'asterisk/ping' });
    const answers = events.events.slice(before).filter((e) => e.type === 'RESTResponse');
    expect(answers.map((e) => [e.transaction_id, e.request_id, e.status_code, e.uri])).toEqual([
      ['', '', 200, 'bridges/no-ids'],
      ['', '', 200, 'asterisk/ping'],
      [last.transaction_id, last.request_id, 200, 'asterisk/ping'],
    ]);
    expect(emu.bridge('no-ids')).toBeDefined();
  });

  it('what counts as no query_strings or no message_body (Asterisk reads only strings and non-empty arrays)', async () => {
    const cases: Record<string, unknown>[] = [
      { query_strings: {} },
      { query_strings: 'type=holding' },
      { query_strings: [] },
      { query_strings: null },
      { message_body: '' },
      { message_body: { type: 'holding' } },
      { message_body: '', content_type: 'text/plain' },
      { message_body: 'type=holding&junk', content_type: 'application/x-www-form-urlencoded' },
      { message_body: '[1]', content_type: 'application/json' },
    ];
    for (const [i, extra] of cases.entries()) {
      events.send({ type: 'RESTRequest', transaction_id: `q${i}`, request_id: `q${i}`, method: 'POST', uri: `bridges/q${i}`, ...extra });
      expect(await responseTo(events, `q${i}`), JSON.stringify(extra)).toMatchObject({ status_code: 200, uri: `bridges/q${i}` });
    }
    expect(emu.bridge('q7')?.type).toBe('holding');
  });

  // res/ari/ari_websockets.c session_read and res/ari/ari_websocket_requests.c
  // parse_rest_request_msg / send_rest_response, Asterisk 22.10.1.
  const ids = { transaction_id: 'bt', request_id: 'br' };
  const ping = { ...ids, type: 'RESTRequest', method: 'GET', uri: 'asterisk/ping?x=1' };
  const badRequest = (message: string, uri = 'asterisk/ping', echoed = ids) => ({
    ...echoed,
    status_code: 400,
    reason_phrase: 'Bad request',
    uri,
    content_type: 'application/json',
    message_body: JSON.stringify({ message }),
  });
  const notJson = { transaction_id: '', request_id: '', status_code: 400, reason_phrase: 'Failed to parse request message JSON', uri: '' };
  const noIds = { transaction_id: '', request_id: '' };
  const logPing = { method: 'GET', path: '/asterisk/ping', query: { x: '1' } };
  const refusedFrames: [string, unknown, Record<string, unknown>, { method: string; path: string; query: Record<string, string> }][] = [
    ['not JSON', 'not json', notJson, { method: '', path: '', query: {} }],
    ['an empty frame', '', notJson, { method: '', path: '', query: {} }],
    ['JSON but not an object or array', '42', notJson, { method: '', path: '', query: {} }],
    ['JSON null', 'null', notJson, { method: '', path: '', query: {} }],
    ['truncated JSON', JSON.stringify(ping).slice(0, -1), notJson, { method: '', path: '', query: {} }],
    ['an array', '[]', badRequest("No 'type' property.", '', noIds), { method: '', path: '', query: {} }],
    ['no type', { ...ping, type: undefined }, badRequest("No 'type' property.", ''), logPing],
    ['an empty type', { ...ping, type: '' }, badRequest("No 'type' property.", ''), logPing],
    ['a type that is not a string', { ...ping, type: 1 }, badRequest("No 'type' property.", ''), logPing],
    ['another type', { ...ping, type: 'RESTResponse' }, badRequest('Unknown request type.', ''), logPing],
    ['a lower-case type', { ...ping, type: 'restrequest' }, badRequest('Unknown request type.', ''), logPing],
    ['no uri', { ...ping, uri: undefined }, badRequest("Empty or missing 'uri' property.", ''), { method: 'GET', path: '', query: {} }],
    ['an empty uri', { ...ping, uri: '' }, badRequest("Empty or missing 'uri' property.", ''), { method: 'GET', path: '', query: {} }],
    ['a uri that is not a string', { ...ping, uri: 5 }, badRequest("Empty or missing 'uri' property.", ''), { method: 'GET', path: '', query: {} }],
    ['no method', { ...ping, method: undefined }, badRequest("Unknown or missing 'method' property."), { ...logPing, method: '' }],
    ['a lower-case method', { ...ping, method: 'get' }, badRequest("Unknown or missing 'method' property."), { ...logPing, method: 'get' }],
    ['PATCH (not in main/http.c)', { ...ping, method: 'PATCH' }, badRequest("Unknown or missing 'method' property."), { ...logPing, method: 'PATCH' }],
    [
      'ids that are not strings',
      { ...ping, transaction_id: 1, request_id: ['r'], method: 'FETCH' },
      badRequest("Unknown or missing 'method' property.", 'asterisk/ping', noIds),
      { ...logPing, method: 'FETCH' },
    ],
    [
      'query_strings with a value that is not a string',
      { ...ping, query_strings: [{ name: 'a', value: 'b' }, { name: 'c', value: 1 }] },
      badRequest("Unable to parse 'query_strings' array."),
      { ...logPing, query: { x: '1', a: 'b' } },
    ],
    ['query_strings of strings', { ...ping, query_strings: ['a=b'] }, badRequest("Unable to parse 'query_strings' array."), logPing],
    [
      'a message_body without content_type',
      { ...ping, message_body: '{}' },
      badRequest("No 'content_type' for 'message_body'."),
      logPing,
    ],
    [
      'a JSON message_body that does not parse',
      { ...ping, content_type: 'application/json', message_body: '{"a":' },
      badRequest("Unable to parse 'message_body' as 'application/json'."),
      logPing,
    ],
    [
      'a JSON message_body that is not an object or array',
      { ...ping, content_type: 'application/json', message_body: '42' },
      badRequest("Unable to parse 'message_body' as 'application/json'."),
      logPing,
    ],
    [
      'a blank JSON message_body',
      { ...ping, content_type: 'application/json', message_body: ' ' },
      badRequest("Unable to parse 'message_body' as 'application/json'."),
      logPing,
    ],
    ['another content_type', { ...ping, content_type: 'text/plain', message_body: 'x' }, badRequest('Unknown content type.'), logPing],
    [
      'a content_type with parameters',
      { ...ping, content_type: 'application/json; charset=utf-8', message_body: '{}' },
      badRequest('Unknown content type.'),
      logPing,
    ],
  ];
  for (const [what, frame, answer, logged] of refusedFrames) {
    it(`${what}: a 400 at once, nothing carried out, logged; the socket answers the next request`, async () => {
      const before = events.events.length;
      events.send(frame);
      const next = await rest({ method: 'POST', uri: 'bridges/next' });
      const answers = events.events.slice(before).filter((e) => e.type === 'RESTResponse');
      expect(answers).toHaveLength(2);
      expect(Object.keys(answers[0]!)).toEqual(['type', ...Object.keys(answer), 'application', 'timestamp', 'asterisk_id']);
      expect(answers[0]).toEqual({
        type: 'RESTResponse',
        ...answer,
        application: 'ari-transfer',
        timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/),
        asterisk_id: '02:fc:00:00:00:01',
      });
      expect(answers[1]).toBe(next);
      expect(next).toMatchObject({ status_code: 200, uri: 'bridges/next' });
      expect(emu.requests).toEqual([
        { ...logged, status: 400, via: 'websocket' },
        { method: 'POST', path: '/bridges/next', query: {}, status: 200, via: 'websocket' },
      ]);
    });
  }

  it('binary frames get no answer', async () => {
    const ws = new WebSocket(`${emu.url.replace('http', 'ws')}/ari/events?app=other&api_key=${USER}:${PASS}`);
    const got: WireEvent[] = [];
    ws.on('message', (data) => got.push(JSON.parse(String(data)) as WireEvent));
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(Buffer.from(JSON.stringify({ ...ping, request_id: 'bin' })), { binary: true });
    ws.send(JSON.stringify({ ...ping, request_id: 'text' }));
    await emu.waitFor(() => emu.requests.length === 1);
    await sleep(20);
    expect(got.filter((e) => e.type === 'RESTResponse').map((e) => e.request_id)).toEqual(['text']);
    ws.close();
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

  it('a refused frame waits its turn behind a delayed request, and no injection applies to it', async () => {
    emu.delayNext({ method: 'POST', path: /^\/bridges\/slow$/, delayMs: 100 });
    const slow = sendRequest(events, { method: 'POST', uri: 'bridges/slow' });
    events.send('not json');
    let loggedBeforeHook = -1;
    const bad = { method: 'GET', uri: 'asterisk/ping', query_strings: [{ name: 'a' }] };
    emu.failNext({ method: 'GET', path: /^\/asterisk\/ping$/, status: 503 });
    emu.beforeNext({ method: 'GET', path: /^\/asterisk\/ping$/, run: () => (loggedBeforeHook = emu.requests.length) });
    const refused = sendRequest(events, bad as RequestFields);
    const next = sendRequest(events, { method: 'GET', uri: 'asterisk/ping' });
    await responseTo(events, next);
    expect(events.events.filter((e) => e.type === 'RESTResponse').map((e) => [e.request_id, e.status_code, e.reason_phrase])).toEqual([
      [slow, 200, 'OK'],
      ['', 400, 'Failed to parse request message JSON'],
      [refused, 400, 'Bad request'],
      [next, 503, 'Service Unavailable'],
    ]);
    expect(loggedBeforeHook).toBe(3); // run for the request after the refused one, not for it
    expect(emu.requests.map((r) => [r.method, r.path, r.status, r.injected ?? '-'])).toEqual([
      ['POST', '/bridges/slow', 200, 'delay'],
      ['', '', 400, '-'],
      ['GET', '/asterisk/ping', 400, '-'],
      ['GET', '/asterisk/ping', 503, 'failure'],
    ]);
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
