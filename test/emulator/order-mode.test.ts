// The seeded order mode: per REST request, the events it causes come before or after
// its response; the choice follows the seed, and each socket still gets every event
// in the order it was emitted.

import { request } from 'node:http';
import { WebSocket } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { Dialer } from './dialing.js';
import { EventHub } from './events.js';
import { AriEmulator } from './index.js';
import { AriState } from './state.js';
import { Scheduler } from './util.js';
import { PASS, USER, connectEvents, type EventClient } from './test-helpers.js';

let emu: AriEmulator | undefined;
let events: EventClient | undefined;
afterEach(async () => {
  await events?.close();
  await emu?.close();
  emu = undefined;
  events = undefined;
});

/** A request with plain node:http, noting when the response head arrived (and running `onHead` right then). */
function post(base: string, path: string, method = 'POST', onHead: () => void = () => {}): Promise<{ status: number; at: number }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/ari${path}`, { method, auth: `${USER}:${PASS}` }, (res) => {
      const at = performance.now();
      onHead();
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, at }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function createBridges(seed: number | null, n: number) {
  emu = await AriEmulator.start({ orderSeed: seed });
  const arrivals = new Map<string, number>();
  events = await connectEvents(emu);
  const ws = events;
  const seen = (): void => {
    for (const e of ws.events) {
      const id = (e.bridge as { id?: string } | undefined)?.id;
      if (e.type === 'BridgeCreated' && id && !arrivals.has(id)) arrivals.set(id, performance.now());
    }
  };
  const timer = setInterval(seen, 0);
  const responses: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await post(emu.url, `/bridges/b${i}`);
    expect(r.status).toBe(200);
    responses.push(r.at);
    await events.waitFor('BridgeCreated', (e) => (e.bridge as { id: string }).id === `b${i}`);
    seen();
  }
  clearInterval(timer);
  const orders = emu.requests.map((r) => r.order ?? 'events-first');
  return { orders, responses, arrivals, emu };
}

describe('REST response / event order mode', () => {
  it('without a seed: events first, nothing marked', async () => {
    const { orders } = await createBridges(null, 5);
    expect(orders).toEqual(Array(5).fill('events-first'));
  });

  it('with a seed: both orders occur, response-first events arrive after the response', async () => {
    const { orders, responses, arrivals } = await createBridges(42, 24);
    expect(orders).toContain('response-first');
    expect(orders).toContain('events-first');
    // (A client on a loaded machine may read the two sockets in either order: only "some".)
    expect(orders.some((o, i) => o === 'response-first' && arrivals.get(`b${i}`)! > responses[i]!)).toBe(true);
  });

  it('the same seed gives the same choices', async () => {
    const first = (await createBridges(7, 16)).orders;
    await events?.close();
    await emu?.close();
    const second = (await createBridges(7, 16)).orders;
    expect(second).toEqual(first);
  });

  it('response first, DELETE /channels: the hangup finishes with the held events, after the response', async () => {
    // The mechanism, without sockets: a hold is on while the request is carried out.
    const hub = new EventHub('app', '02:fc:00:00:00:01');
    const state = new AriState(
      { app: 'app', systemName: 'emu', context: 'from-phones', inboundDialplan: 'trace-harness', callerIds: {}, noise: false, channelvars: [] },
      hub,
      new Scheduler(),
    );
    const sent: string[] = [];
    const socket = { readyState: WebSocket.OPEN, send: (t: string) => sent.push((JSON.parse(t) as { type: string }).type) };
    hub.addSocket({ ws: socket as unknown as WebSocket, apps: ['app'], subscribeAll: true });
    const ch = new Dialer(state).inboundCall({ endpoint: 'alice', exten: '100' });
    const release = hub.holdDelivery();
    state.softHangup(ch, 16);
    expect(hub.log.map((e) => e.type)).toEqual(['ChannelCreated', 'StasisStart', 'ChannelHangupRequest']);
    expect(state.channels.has(ch.id)).toBe(true); // the 204 goes out now; the channel is still there
    expect(sent).toEqual(['ChannelCreated', 'StasisStart']); // and its events are held
    release();
    expect(state.channels.has(ch.id)).toBe(false);
    expect(sent).toEqual(['ChannelCreated', 'StasisStart', 'ChannelHangupRequest', 'StasisEnd', 'ChannelHangupRequest', 'ChannelDestroyed']);
  });

  it('response first, DELETE /channels over HTTP: marked so, and ChannelDestroyed comes after the response', async () => {
    emu = await AriEmulator.start({ orderSeed: 11, asyncHangup: true });
    events = await connectEvents(emu);
    const ws = events;
    const destroyedBeforeResponse: boolean[] = [];
    for (let i = 0; i < 12; i++) {
      const call = emu.phoneCalls({ endpoint: 'alice', exten: '100' });
      const gone = () => ws.events.some((e) => e.type === 'ChannelDestroyed' && (e.channel as { id: string }).id === call.id);
      await post(emu.url, `/channels/${call.id}`, 'DELETE', () => destroyedBeforeResponse.push(gone()));
      await emu.settled(); // the barrier for assertions on the emulator's state
      expect(emu.channel(call.id)).toBeUndefined();
      await events.waitFor('ChannelDestroyed', (e) => (e.channel as { id: string }).id === call.id);
    }
    const orders = emu.requests.filter((r) => r.method === 'DELETE').map((r) => r.order ?? 'events-first');
    expect(orders).toContain('response-first');
    // What the client sees also depends on how fast it reads two sockets (a loaded machine
    // can read them in either order), so only: some response-first hangup really came second.
    expect(orders.some((o, i) => o === 'response-first' && !destroyedBeforeResponse[i])).toBe(true);
  });

  it('respondFirst: without any seed, that one request is answered first and its events follow eventsAfterMs later', async () => {
    emu = await AriEmulator.start();
    events = await connectEvents(emu);
    const ws = events;
    emu.respondFirst({ method: 'POST', path: /^\/bridges\/late$/, eventsAfterMs: 60 });
    const created = () => ws.events.some((e) => e.type === 'BridgeCreated' && (e.bridge as { id: string }).id === 'late');
    let createdAtResponse: boolean | undefined;
    const r = await post(emu.url, '/bridges/late', 'POST', () => (createdAtResponse = created()));
    expect(r.status).toBe(200);
    expect(createdAtResponse).toBe(false);
    await new Promise((done) => setTimeout(done, 30));
    expect(created()).toBe(false); // still held, 30 ms into the 60
    await events.waitFor('BridgeCreated', (e) => (e.bridge as { id: string }).id === 'late');
    expect(performance.now() - r.at).toBeGreaterThanOrEqual(55);
    // Only the next matching request: the one after it is events first again.
    await post(emu.url, '/bridges/late2');
    expect(emu.requests.map((q) => [q.path, q.order ?? 'events-first'])).toEqual([
      ['/bridges/late', 'response-first'],
      ['/bridges/late2', 'events-first'],
    ]);
  });

  it('keeps each socket in emission order while events are held', async () => {
    emu = await AriEmulator.start({ orderSeed: 3 });
    events = await connectEvents(emu);
    const alice = emu.phoneCalls({ endpoint: 'alice', exten: '100' });
    // Several requests in flight at once, and scenario steps between them.
    await Promise.all([
      post(emu.url, `/channels/${alice.id}/answer`),
      post(emu.url, '/bridges/x'),
      post(emu.url, '/bridges/y'),
      Promise.resolve().then(() => emu!.phoneCalls({ endpoint: 'bob', exten: '200' })),
    ]);
    await post(emu.url, `/bridges/x/addChannel?channel=${alice.id}`);
    await emu.waitFor(() => events!.events.length === emu!.events.length);
    await events.settle();
    expect(events.events.map((e) => e.type)).toEqual(emu.events.map((e) => e.type));
    expect(events.events.map((e) => e.timestamp)).toEqual(emu.events.map((e) => e.timestamp));
  });
});
