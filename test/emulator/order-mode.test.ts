// The seeded order mode: per REST request, the events it causes come before or after
// its response; the choice follows the seed, and each socket still gets every event
// in the order it was emitted.

import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { AriEmulator } from './index.js';
import { PASS, USER, connectEvents, type EventClient } from './test-helpers.js';

let emu: AriEmulator | undefined;
let events: EventClient | undefined;
afterEach(async () => {
  await events?.close();
  await emu?.close();
  emu = undefined;
  events = undefined;
});

/** POST with plain node:http, noting when the response head arrived (performance.now()). */
function post(base: string, path: string): Promise<{ status: number; at: number }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/ari${path}`, { method: 'POST', auth: `${USER}:${PASS}` }, (res) => {
      const at = performance.now();
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
    orders.forEach((o, i) => {
      if (o === 'response-first') expect(arrivals.get(`b${i}`)!).toBeGreaterThan(responses[i]!);
    });
  });

  it('the same seed gives the same choices', async () => {
    const first = (await createBridges(7, 16)).orders;
    await events?.close();
    await emu?.close();
    const second = (await createBridges(7, 16)).orders;
    expect(second).toEqual(first);
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
