// SseHub over real HTTP on loopback: events reach every reader; a client
// that stops reading is cut off instead of holding the service's memory.
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_BUFFERED, SseHub } from '../../src/http/sse.js';

let server: Server | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await new Promise((r) => server?.close(r) ?? r(undefined));
  server = undefined;
});

async function serve(hub: SseHub): Promise<number> {
  server = createServer((_req, res) => hub.add(res, { event: 'snapshot', data: { n: 0 } }));
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** A client on a raw socket; `paused` ones never read. */
function client(port: number, paused = false): { text: () => string } {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  let text = '';
  socket.write('GET /live HTTP/1.1\r\nHost: x\r\n\r\n');
  if (paused) socket.pause();
  else socket.on('data', (d: Buffer) => (text += d.toString()));
  return { text: () => text };
}

async function until(predicate: () => boolean, what: string) {
  const deadline = Date.now() + 5000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('SseHub', () => {
  it('sends the snapshot, then each broadcast, as named events to every client', async () => {
    const hub = new SseHub();
    const port = await serve(hub);
    const a = client(port);
    const b = client(port);
    await until(() => hub.size === 2, 'two clients');
    hub.broadcast('calls', { n: 1 });
    // HTTP/1.1 chunks the body: one chunk per write, each holding whole frames.
    const frames = ['retry: 2000\n\n', 'event: snapshot\ndata: {"n":0}\n\n', 'event: calls\ndata: {"n":1}\n\n'];
    const inOrder = (text: string) => frames.every((f, i) => text.indexOf(f) >= 0 && (i === 0 || text.indexOf(f) > text.indexOf(frames[i - 1]!)));
    await until(() => inOrder(a.text()) && inOrder(b.text()), 'both clients to get the events');
    expect(a.text()).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*content-type: text\/event-stream; charset=utf-8\r\n/i);
    hub.closeAll();
    expect(hub.size).toBe(0);
  });

  it('cuts off a client that does not read once more than MAX_BUFFERED waits for it; the others go on', async () => {
    const hub = new SseHub();
    const port = await serve(hub);
    const reader = client(port);
    client(port, true);
    await until(() => hub.size === 2, 'two clients');
    const chunk = 'x'.repeat(64 * 1024);
    let sent = 0;
    // The kernel's socket buffers take some first; then the response's own buffer grows to the limit.
    while (hub.size === 2 && sent < 1000) {
      hub.broadcast('big', chunk);
      sent++;
      await new Promise((r) => setImmediate(r));
    }
    expect(hub.size).toBe(1);
    // Its connection is closed on the service's side.
    const connections = () => new Promise<number>((r) => server!.getConnections((_e, n) => r(n)));
    const deadline = Date.now() + 5000;
    while ((await connections()) !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(await connections()).toBe(1);
    hub.broadcast('after', 1);
    await until(() => reader.text().includes('event: after\ndata: 1\n\n'), 'the reader to go on');
    // It was cut off only once more than MAX_BUFFERED had been sent to it.
    expect(sent * chunk.length).toBeGreaterThan(MAX_BUFFERED);
    hub.closeAll();
  });
});
