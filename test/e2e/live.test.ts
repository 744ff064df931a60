// The live page's server side, end to end over real HTTP on loopback: the
// token for a browser (a cookie from /?token=), the page's routes beside the
// API's, and the /live event stream during a real transfer against the ARI
// emulator. The page itself, in a browser: live-page.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import { startHarness, transferFinished, twoPartyCall, waitUntil, type Harness } from './harness.js';

const TOKEN = 'live-token-0123456789abcdef';

let h: Harness | undefined;
let api: HttpServer | undefined;
const streams: EventStream[] = [];
afterEach(async () => {
  for (const s of streams.splice(0)) await s.close();
  await api?.close();
  await h?.close();
  api = undefined;
  h = undefined;
});

async function start(token?: string) {
  h = await startHarness();
  api = await startHttpServer({ service: h.service, config: { host: '127.0.0.1', port: 0, token }, logger: h.logs.logger });
}

async function request(path: string, init: RequestInit & { cookie?: string } = {}) {
  const headers = new Headers(init.headers);
  if (init.cookie) headers.set('cookie', init.cookie);
  const res = await fetch(`${api!.url}${path}`, { ...init, headers, redirect: 'manual' });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe('the live page: the token in a browser', () => {
  it('without the token the page, its files and /live answer 401; /?token= gives a cookie and the page without the token in its address', async () => {
    await start(TOKEN);
    for (const path of ['/', '/page/live.js', '/page/ladder.js', '/page/style.css', '/live', '/calls']) {
      const res = await request(path);
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate'), path).toBe('Bearer realm="ari-transfer"');
      expect(res.headers.get('set-cookie'), path).toBeNull();
    }
    const wrong = await request(`/?token=${TOKEN}x`);
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    // Only the page's own address takes ?token=.
    expect((await request(`/calls?token=${TOKEN}`)).status).toBe(401);

    const login = await request(`/?token=${TOKEN}`);
    expect(login.status).toBe(303);
    expect(login.headers.get('location')).toBe('./');
    expect(login.headers.get('cache-control')).toBe('no-store');
    const setCookie = login.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/^ari_transfer_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict$/);
    // The browser keeps a digest, never the token itself.
    expect(setCookie).not.toContain(TOKEN);
    const cookie = setCookie.split(';')[0]!;

    const page = await request('/', { cookie });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(page.text).toContain('<script type="module" src="page/live.js">');
    expect((await request('/page/ladder.js', { cookie })).headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await request('/calls', { cookie })).status).toBe(200);
    expect((await request('/transfers', { cookie })).status).toBe(200);
    expect((await request('/nope', { cookie })).status).toBe(404);
    // Another cookie with the same name, or one made from another token: refused.
    const forged = await request('/calls', { cookie: 'ari_transfer_session=abc' });
    expect(forged.status).toBe(401);
    expect(forged.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    // The bearer token still opens the page, for curl.
    expect((await request('/', { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    // The health checks stay open; nothing logged the token.
    expect((await request('/healthz')).status).toBe(200);
    expect((await request('/readyz')).status).toBe(200);
    expect(h!.logs.text()).not.toContain(TOKEN);
  });

  it('a cookie from another token opens nothing', async () => {
    await start(TOKEN);
    const other = await startHttpServer({ service: h!.service, config: { host: '127.0.0.1', port: 0, token: `${TOKEN}-other` }, logger: h!.logs.logger });
    try {
      const res = await fetch(`${other.url}/?token=${TOKEN}-other`, { redirect: 'manual' });
      const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
      expect((await request('/', { cookie })).status).toBe(401);
      expect((await fetch(`${other.url}/`, { headers: { cookie } })).status).toBe(200);
    } finally {
      await other.close();
    }
  });

  it('without HTTP_TOKEN: the page is open, HEAD / answers, unknown routes still get their 404', async () => {
    await start();
    expect((await request('/')).status).toBe(200);
    const head = await request('/', { method: 'HEAD' });
    expect(head).toMatchObject({ status: 200, text: '' });
    expect(head.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await request('/index.html')).toMatchObject({ status: 404 });
    expect(JSON.parse((await request('/page/nope.js')).text)).toEqual({ statusCode: 404, error: 'Not Found', message: 'no route GET /page/nope.js' });
    // No HEAD twin for the event stream.
    expect((await request('/live', { method: 'HEAD' })).status).toBe(404);
    expect((await request('/healthz')).status).toBe(200);
  });
});

describe('the live page: GET /live', () => {
  it('streams a snapshot, the calls when they change, and each start, step and end of a transfer', async () => {
    await start();
    const live = await openStream('/live');
    const snapshot = await live.next('snapshot');
    expect(snapshot).toEqual({
      transfers: { inFlight: [], finished: [] },
      calls: { totals: { channels: 0, bridges: 0 }, calls: [], alone: [], notShown: { calls: 0, alone: 0 } },
    });

    const { alice, bob, bridgeId } = await twoPartyCall(h!);
    const calls = (await live.next('calls', (c: any) => c.totals.bridges === 1)) as any;
    expect(calls.totals).toEqual({ channels: 2, bridges: 1 });
    expect(calls.calls).toHaveLength(1);
    expect(calls.calls[0].bridgeId).toBe(bridgeId);
    expect(calls.calls[0].parties.map((p: { id: string }) => p.id).sort()).toEqual([alice.id, bob.id].sort());
    expect(calls.calls[0].parties.find((p: { id: string }) => p.id === alice.id)).toMatchObject({ caller: { name: 'Alice' }, state: 'Up' });
    // Only changes are sent: never the snapshot's calls again.
    expect(live.seen.filter((e) => e.event === 'calls' && (e.data as any).totals.channels === 0)).toEqual([]);

    h!.emu.setEndpoint('carol', { kind: 'answer' });
    const refer = h!.emu.sendRefer(bob.id, { kind: 'blind', destination: 'carol' });
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    const summary = await transferFinished(h!);

    const started = (await live.next('transfer-started')) as any;
    expect(started).toMatchObject({ transferId: summary.transferId, kind: 'blind', sourceChannelId: bob.id, destination: 'carol', steps: [] });
    const finished = (await live.next('transfer-finished')) as any;
    const [recorded] = h!.service.history.finished();
    expect(finished).toEqual(recorded);
    expect(finished).toMatchObject({ result: 'completed', sipfrags: [100, 200] });
    // Between them, every step, once, in the order recorded.
    const steps = live.seen.filter((e) => e.event === 'transfer-step').map((e) => e.data as any);
    expect(steps.map((s) => s.transferId)).toEqual(recorded!.steps.map(() => summary.transferId));
    expect(steps.map((s) => s.step)).toEqual(recorded!.steps);
    const order = live.seen.map((e) => e.event).filter((e) => e.startsWith('transfer-'));
    expect(order[0]).toBe('transfer-started');
    expect(order.at(-1)).toBe('transfer-finished');

    // A browser connecting now finds the transfer in its snapshot.
    const late = await openStream('/live');
    expect(((await late.next('snapshot')) as any).transfers).toEqual({ inFlight: [], finished: [recorded] });
  });

  it('closing the server ends the open streams instead of waiting for them', async () => {
    await start();
    const live = await openStream('/live');
    await live.next('snapshot');
    await api!.close();
    api = undefined;
    await live.ended;
  });
});

interface EventStream {
  /** Every event so far, in order. */
  seen: { event: string; data: unknown }[];
  /** The first event named `event` (and matching `accept`) not yet taken by next(). */
  next(event: string, accept?: (data: any) => boolean): Promise<unknown>;
  ended: Promise<void>;
  close(): Promise<void>;
}

async function openStream(path: string): Promise<EventStream> {
  const controller = new AbortController();
  const res = await fetch(`${api!.url}${path}`, { signal: controller.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
  const seen: { event: string; data: unknown }[] = [];
  const taken = new Set<number>();
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  const ended = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(frame)?.[1];
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          if (event && data) seen.push({ event, data: JSON.parse(data) });
        }
      }
    } catch (err) {
      if (!controller.signal.aborted) throw err;
    }
  })();
  const stream: EventStream = {
    seen,
    async next(event, accept = () => true) {
      let found = -1;
      await waitUntil(() => (found = seen.findIndex((e, i) => !taken.has(i) && e.event === event && accept(e.data))) >= 0, `a ${event} event`, 5000);
      taken.add(found);
      return seen[found]!.data;
    },
    ended,
    async close() {
      controller.abort();
      await ended;
    },
  };
  streams.push(stream);
  return stream;
}
