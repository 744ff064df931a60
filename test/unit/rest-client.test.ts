import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AriRestClient } from '../../src/ari/rest-client.js';
import { ariFailure } from '../helpers/ari-failure.js';

// A loopback HTTP server that answers as a route table says.
type Answer = { status: number; body?: unknown; delayMs?: number };
let server: Server;
let url: string;
const seen: { method: string; url: string; authorization: string | undefined; body: string }[] = [];
const routes = new Map<string, Answer>();

beforeAll(async () => {
  server = createServer(async (req: IncomingMessage, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    seen.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization, body });
    const answer = routes.get(`${req.method} ${req.url!.split('?')[0]}`) ?? { status: 404, body: { message: 'Resource not found' } };
    if (answer.delayMs) await new Promise((r) => setTimeout(r, answer.delayMs));
    res.writeHead(answer.status, answer.body === undefined ? {} : { 'content-type': 'application/json' });
    res.end(answer.body === undefined ? undefined : JSON.stringify(answer.body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const client = () => new AriRestClient({ url, username: 'asterisk', password: 'pw-never-logged', timeoutMs: 200 });

describe('AriRestClient', () => {
  it('sends Basic credentials in the header and the operation parameters in the query', async () => {
    routes.set('POST /ari/channels/c%2F1/transfer_progress', { status: 204 });
    await client().transferProgress('c/1', 'channel_progress');
    const last = seen.at(-1)!;
    expect(last.url).toBe('/ari/channels/c%2F1/transfer_progress?states=channel_progress');
    expect(last.authorization).toBe(`Basic ${Buffer.from('asterisk:pw-never-logged').toString('base64')}`);
  });

  it('keeps the status and Asterisk message apart for 404, 409 and 400', async () => {
    routes.set('POST /ari/channels/gone/transfer_progress', { status: 404, body: { message: 'Channel not found' } });
    routes.set('POST /ari/channels/left/transfer_progress', { status: 409, body: { message: 'Channel not in a Stasis application' } });
    routes.set('POST /ari/channels/bad/transfer_progress', { status: 400, body: { message: 'Invalid states value' } });
    const gone = await ariFailure(client().transferProgress('gone', 'channel_answered'));
    expect([gone.status, gone.detail, gone.kind, gone.isNotFound]).toEqual([404, 'Channel not found', 'http', true]);
    const left = await ariFailure(client().transferProgress('left', 'channel_answered'));
    expect([left.status, left.detail, left.isNotFound]).toEqual([409, 'Channel not in a Stasis application', false]);
    const bad = await ariFailure(client().transferProgress('bad', 'channel_answered'));
    expect(bad.message).toBe('channels.transferProgress failed: 400 Invalid states value');
  });

  it('turns a slow answer into a timeout error', async () => {
    routes.set('GET /ari/channels', { status: 200, body: [], delayMs: 1000 });
    const err = await ariFailure(client().listChannels());
    expect(err.kind).toBe('timeout');
    expect(err.operation).toBe('channels.list');
  });

  it('turns a refused connection into a network error without credentials in it', async () => {
    const dead = new AriRestClient({ url: 'http://127.0.0.1:1', username: 'asterisk', password: 'pw-never-logged', timeoutMs: 500 });
    const err = await ariFailure(dead.listBridges());
    expect(err.kind).toBe('network');
    expect(err.detail).toBe('ECONNREFUSED');
    expect(JSON.stringify({ ...err, message: err.message })).not.toContain('pw-never-logged');
  });

  it('originates with our own channel id and sends variables in the body', async () => {
    routes.set('POST /ari/channels/xfer-1', { status: 200, body: { id: 'xfer-1', name: 'PJSIP/carol-00000001', state: 'Down' } });
    const channel = await client().originate({
      channelId: 'xfer-1',
      endpoint: 'PJSIP/carol',
      app: 'ari-transfer',
      callerId: 'Alice <100>',
      timeoutSec: 30,
      variables: { 'PJSIP_HEADER(add,X-Transfer)': 'yes' },
    });
    expect(channel.id).toBe('xfer-1');
    const last = seen.at(-1)!;
    expect(new URL(last.url, url).searchParams.get('callerId')).toBe('Alice <100>');
    expect(JSON.parse(last.body)).toEqual({ variables: { 'PJSIP_HEADER(add,X-Transfer)': 'yes' } });
  });

  it('reads a channel variable', async () => {
    routes.set('GET /ari/channels/c1/variable', { status: 200, body: { value: '1-22438@127.0.0.1' } });
    expect(await client().getChannelVariable('c1', 'CHANNEL(pjsip,call-id)')).toBe('1-22438@127.0.0.1');
    expect(new URL(seen.at(-1)!.url, url).searchParams.get('variable')).toBe('CHANNEL(pjsip,call-id)');
  });
});
