// The test proxy's hold (test/helpers/tcp-proxy.ts), on real loopback
// sockets: one request held back on the one connection that carries it,
// never reaching the server behind, while everything else keeps flowing.
import { createServer as createHttpServer, request, Agent, type Server as HttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const waitFor = async (what: string, check: () => boolean, ms = 2000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};
const settle = () => new Promise((r) => setTimeout(r, 50));

/** A TCP server that keeps, per connection, what it received and whether that connection closed; it answers "ok\n" to each chunk. */
async function recordingServer() {
  const conns: { text: string; closed: boolean; socket: Socket }[] = [];
  const server: Server = createServer((socket) => {
    const conn = { text: '', closed: false, socket };
    conns.push(conn);
    socket.on('data', (d) => {
      conn.text += d.toString('latin1');
      socket.write('ok\n');
    });
    socket.on('close', () => (conn.closed = true));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => {
    for (const c of conns) c.socket.destroy();
    return new Promise((r) => server.close(r));
  });
  return { port: (server.address() as AddressInfo).port, conns };
}

async function proxyTo(port: number): Promise<TcpProxy> {
  const proxy = await TcpProxy.start({ host: '127.0.0.1', port });
  closers.push(() => proxy.close());
  return proxy;
}

/** A client connection through the proxy that keeps what it receives. */
async function client(proxy: TcpProxy) {
  const socket = connect(proxy.port, '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.on('error', () => undefined);
  const c = { socket, received: '' };
  socket.on('data', (d) => (c.received += d.toString('latin1')));
  closers.push(async () => socket.destroy());
  return c;
}

describe('TcpProxy.hold', () => {
  it('holds the matching request and all that follows on its connection; other connections and the answers keep flowing', async () => {
    const upstream = await recordingServer();
    const proxy = await proxyTo(upstream.port);
    const a = await client(proxy);
    const b = await client(proxy);
    await waitFor('both connections upstream', () => upstream.conns.length === 2);
    const [toA, toB] = upstream.conns;

    const caught = proxy.hold(/POST \/ari\/bridges\/b1\/addChannel/);
    a.socket.write('GET /ari/channels HTTP/1.1\r\n\r\n');
    await waitFor('the first request upstream', () => toA!.text.length > 0);
    a.socket.write('POST /ari/bridges/b1/addChannel?channel=c1 HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await caught).toBe('POST /ari/bridges/b1/addChannel?channel=c1 HTTP/1.1');
    a.socket.write('DELETE /ari/channels/c2 HTTP/1.1\r\n\r\n');
    b.socket.write('POST /ari/channels/c1/transfer_progress HTTP/1.1\r\n\r\n');
    await waitFor('the other connection to flow', () => toB!.text.includes('transfer_progress'));
    // Asterisk's side of the held connection still reaches the client.
    toA!.socket.write('late answer\n');
    await waitFor('the late answer', () => a.received.includes('late answer'));
    await settle();

    expect(toA!.text).toBe('GET /ari/channels HTTP/1.1\r\n\r\n');
    expect(proxy.heldBytes).toBeGreaterThan(0);
    expect(proxy.open).toBe(2);
  });

  it('forwards what precedes the match in its chunk, holds from the match on', async () => {
    const upstream = await recordingServer();
    const proxy = await proxyTo(upstream.port);
    const a = await client(proxy);
    const caught = proxy.hold(/POST \/held/);
    a.socket.write('...end of an earlier request\r\n\r\nPOST /held HTTP/1.1\r\n\r\n');
    expect(await caught).toBe('POST /held HTTP/1.1');
    await waitFor('the earlier bytes upstream', () => upstream.conns[0]?.text !== undefined && upstream.conns[0].text.length > 0);
    await settle();
    expect(upstream.conns[0]!.text).toBe('...end of an earlier request\r\n\r\n');
  });

  it('a held request never reaches the server, also once its client is gone; the hold is one-shot', async () => {
    const upstream = await recordingServer();
    const proxy = await proxyTo(upstream.port);
    const a = await client(proxy);
    const caught = proxy.hold(/POST \/held/);
    a.socket.write('POST /held HTTP/1.1\r\n\r\n');
    await caught;
    // The service killed: its end of the connection goes, and with it what was held.
    a.socket.destroy();
    await waitFor('the upstream connection to close', () => upstream.conns[0]?.closed === true);
    expect(upstream.conns[0]!.text).toBe('');

    const b = await client(proxy);
    b.socket.write('POST /held HTTP/1.1\r\n\r\n');
    await waitFor('a second matching request to pass', () => upstream.conns[1]?.text === 'POST /held HTTP/1.1\r\n\r\n');
  });

  it('with HTTP keep-alive: the held request gets no answer and the server never sees it, while requests on other sockets are answered', async () => {
    const seen: string[] = [];
    const http: HttpServer = createHttpServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      res.end('{}');
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    closers.push(() => {
      http.closeAllConnections();
      return new Promise((r) => http.close(r));
    });
    const proxy = await proxyTo((http.address() as AddressInfo).port);
    const agent = new Agent({ keepAlive: true });
    closers.push(async () => agent.destroy());
    const send = (method: string, path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: proxy.port, method, path, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });

    expect(await send('GET', '/ari/channels')).toBe(200);
    const caught = proxy.hold(/POST \/ari\/bridges\/b1\/addChannel/);
    const held = send('POST', '/ari/bridges/b1/addChannel?channel=c1');
    held.catch(() => undefined);
    await caught;
    expect(await send('POST', '/ari/channels/c1/transfer_progress?states=channel_answered')).toBe(200);
    expect(await Promise.race([held.then(() => 'answered'), settle().then(() => 'unanswered')])).toBe('unanswered');
    expect(seen).toEqual(['GET /ari/channels', 'POST /ari/channels/c1/transfer_progress?states=channel_answered']);
  });
});
