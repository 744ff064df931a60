// Webhooks through the running service: a real receiver on loopback gets
// the story and the result of a transfer, signed.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { verifySignature } from '../../src/webhooks/index.js';
import { replacesFor, setUpAttendedCalls, startHarness, waitUntil, type Harness } from './harness.js';

const SECRET = 'a-webhook-secret-of-some-length';

interface Received {
  path: string;
  body: Record<string, unknown>;
  verified: boolean;
}

let h: Harness | undefined;
let receiver: Server | undefined;
afterEach(async () => {
  await h?.close();
  await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
  h = undefined;
  receiver = undefined;
});

async function startReceiver(): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  receiver = createServer(async (req, res) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const verified = verifySignature(
      SECRET,
      String(req.headers['x-ari-transfer-timestamp']),
      raw,
      String(req.headers['x-ari-transfer-signature']),
    );
    received.push({ path: req.url ?? '', body: JSON.parse(raw) as Record<string, unknown>, verified });
    res.writeHead(204).end();
  });
  await new Promise<void>((r) => receiver!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`, received };
}

describe('webhooks from the service', () => {
  it('sends every step to the event hook and the result to the action hook, signed', async () => {
    const hook = await startReceiver();
    h = await startHarness({ TRANSFER_EVENT_HOOK: `${hook.url}/events`, TRANSFER_ACTION_HOOK: `${hook.url}/actions`, WEBHOOK_SECRET: SECRET });
    const calls = await setUpAttendedCalls(h);
    const refer = h.emu.sendRefer(calls.bobFirst.id, { kind: 'attended', destination: '1003', replaces: replacesFor(h, calls.bobConsult.id) });
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await waitUntil(() => hook.received.some((r) => r.path === '/actions'), 'the result to be delivered');

    const actions = hook.received.filter((r) => r.path === '/actions');
    expect(actions).toHaveLength(1);
    expect(actions[0]).toMatchObject({
      verified: true,
      body: { type: 'transfer.finished', kind: 'attended', result: 'completed', sipfrags: [100, 200], sourceChannelId: calls.bobFirst.id },
    });
    const transferId = actions[0]!.body.transferId;
    await waitUntil(() => hook.received.filter((r) => r.path === '/events').length >= 8, 'the steps to be delivered');
    const events = hook.received.filter((r) => r.path === '/events' && r.body.transferId === transferId);
    expect(events.every((e) => e.verified)).toBe(true);
    expect(events[0]!.body.type).toBe('transfer.started');
    const steps = events.slice(1, 5).map((e) => e.body.step);
    // The 100 and the move are in flight together (the 100 is not waited for).
    expect([...steps.slice(0, 2), ...steps.slice(2).sort()]).toEqual(['requested', 'plan', 'move', 'progress']);
  });
});
