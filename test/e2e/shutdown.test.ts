// Graceful shutdown: SIGTERM must never leave a phone's REFER unanswered.
import { afterEach, describe, expect, it } from 'vitest';
import { membersOf, startHarness, twoPartyCall, waitUntil, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => {
  await h.emu.close();
});

/** alice and bob talking in one bridge; returns their ids and the bridge. */
async function call(n: number) {
  const c = await twoPartyCall(h, { a: `alice${n}`, b: `bob${n}` }, `call-${n}`);
  return { alice: c.alice.id, bob: c.bob.id, bridge: c.bridgeId };
}

describe('graceful shutdown', () => {
  it('lets a transfer in flight finish, and refuses REFERs arriving meanwhile with 503', async () => {
    h = await startHarness();
    const first = await call(1);
    const second = await call(2);
    h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 300 });
    const inFlight = h.emu.sendRefer(first.bob, { kind: 'blind', destination: 'carol' });
    await waitUntil(() => h.service.transfers.activeCount === 1 && inFlight.sipfrags.length === 1, 'the transfer to start');

    const stopped = h.service.stop(5000);
    await waitUntil(() => h.logs.lines.some((l) => l.msg === 'stopping: no new transfers'), 'the drain to start');
    const late = h.emu.sendRefer(second.bob, { kind: 'blind', destination: 'carol' });
    expect(await late.waitForTermination()).toEqual([100, 503]);
    expect(membersOf(h, second.bridge)).toEqual([second.alice, second.bob].sort());

    await stopped;
    expect(inFlight.sipfrags).toEqual([100, 200]);
    expect(h.finished).toMatchObject([{ result: 'completed' }]);
    expect(h.emu.connectedSockets).toBe(0);
    expect(h.logs.lines.find((l) => l.msg === 'stopped')).toMatchObject({ unfinished: 0 });
  });

  it('tells the phone 503 for a transfer still unfinished when the grace period is over', async () => {
    h = await startHarness({ TRANSFER_TIMEOUT: '60' });
    const first = await call(1);
    h.emu.setEndpoint('carol', { kind: 'no-answer' });
    const refer = h.emu.sendRefer(first.bob, { kind: 'blind', destination: 'carol' });
    await waitUntil(() => h.emu.channels().some((c) => c.id.startsWith('transfer-')), 'carol to ring');

    await h.service.stop(200);
    expect(refer.sipfrags).toEqual([100, 503]);
    expect(h.logs.lines.find((l) => l.msg === 'stopped')).toMatchObject({ unfinished: 1 });
    // Given up cleanly: the ringing leg is cancelled, alice no longer hears ringback, the call is as before.
    expect(h.emu.channels().filter((c) => c.id.startsWith('transfer-'))).toEqual([]);
    expect(h.emu.channel(first.alice)?.ringing).toBe(false);
    expect(membersOf(h, first.bridge)).toEqual([first.alice, first.bob].sort());
    expect(h.finished).toMatchObject([{ result: 'failed', reason: 'the service is shutting down' }]);
  });
});
