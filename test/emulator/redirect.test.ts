// POST /channels/{id}/redirect in the emulator, against what Asterisk 22.10.1
// did (test/fixtures/traces/refer-out/README.md): the endpoint parameter's
// errors, the Refer-To, no event for the REFER's outcome, the channel's later
// commands waiting for that outcome, the far end's own hangup when it takes
// the call.
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

/** Index after everything emitted so far has arrived on our socket. */
const mark = async (): Promise<number> => {
  await emu.waitFor(() => events.events.length >= emu.events.length, 5000);
  await events.settle(20);
  return events.events.length;
};
const idOf = (e: WireEvent): string | undefined => ((e.channel ?? e.peer) as { id?: string } | undefined)?.id;

/** The carrier's call, answered and bridged with bob's. */
function carrierCall(): { carrier: string; bob: string; bridge: string } {
  const carrier = emu.phoneCalls({ endpoint: 'carrier', exten: '1002' }).id;
  emu.answer(carrier);
  const bob = emu.phoneCalls({ endpoint: '1002', exten: '1' }).id;
  emu.answer(bob);
  const bridge = emu.createBridge().id;
  emu.addToBridge(bridge, carrier);
  emu.addToBridge(bridge, bob);
  return { carrier, bob, bridge };
}

/** POST answer on the channel; resolves with its status, or 'pending' if it has not returned within `ms`. */
async function answerWithin(channel: string, ms: number): Promise<number | 'pending'> {
  return Promise.race([ari(emu, 'POST', `/channels/${channel}/answer`).then((r) => r.status), sleep(ms).then(() => 'pending' as const)]);
}

describe('POST /channels/{id}/redirect', () => {
  it('the endpoint parameter\'s errors, as recorded: 400 without it, 422 without tech/resource or for another technology, 404 for an unknown channel', async () => {
    const { carrier } = carrierCall();
    const redirect = (endpoint?: string, channel = carrier) => ari(emu, 'POST', `/channels/${channel}/redirect`, endpoint === undefined ? {} : { query: { endpoint } });
    expect(await redirect()).toMatchObject({ status: 400, body: { message: "Required parameter 'endpoint' not provided." } });
    expect(await redirect('PJSIP')).toMatchObject({ status: 422, body: { message: "Endpoint parameter 'PJSIP' does not contain tech/resource" } });
    expect(await redirect('PJSIP/')).toMatchObject({ status: 422, body: { message: "No resource provided in endpoint parameter 'PJSIP/'" } });
    expect(await redirect('SIP/0612345678')).toMatchObject({
      status: 422,
      body: { message: "Endpoint technology 'SIP' does not match channel technology 'PJSIP'" },
    });
    expect(await redirect('PJSIP/sip:0612345678@carrier.example', 'no-such-channel')).toMatchObject({ status: 404, body: { message: 'Channel not found' } });
    expect(emu.refersOut).toEqual([]);
  });

  it('accepted, out of its bridge: 204 at once; the answer after it waits for the final NOTIFY; the far end hangs up (cause 16); no event tells the REFER', async () => {
    const { carrier, bridge } = carrierCall();
    emu.setReferAnswer('carrier', { kind: 'accept', finalAfterMs: 150, byeAfterMs: 50 });
    emu.removeFromBridge(bridge, carrier);
    const since = await mark();
    expect((await ari(emu, 'POST', `/channels/${carrier}/redirect`, { query: { endpoint: 'PJSIP/sip:0612345678@carrier.example' } })).status).toBe(204);
    expect(emu.refersOut).toEqual([{ channelId: carrier, endpoint: 'carrier', referTo: 'sip:0612345678@carrier.example', answer: 200 }]);
    const started = Date.now();
    expect(await answerWithin(carrier, 2000)).toBe(204);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    await emu.waitFor(() => emu.channel(carrier) === undefined, 2000);
    await sleep(30);
    const types = events.events.slice(since).filter((e) => idOf(e) === carrier && e.type !== 'ChannelVarset' && e.type !== 'ChannelDialplan');
    expect(types.map((e) => e.type)).toEqual(['ChannelHangupRequest', 'StasisEnd', 'ChannelHangupRequest', 'ChannelDestroyed']);
    expect(types.at(-1)!.cause).toBe(16);
  });

  it('refused: nothing happens to the call; out of its bridge the answer after it returns, in its bridge it stays stuck until the channel is gone', async () => {
    const { carrier, bridge } = carrierCall();
    const since = await mark();
    // Bridged: stuck (the recording's 403 case).
    expect((await ari(emu, 'POST', `/channels/${carrier}/redirect`, { query: { endpoint: 'PJSIP/sip:0612345678@carrier.example' } })).status).toBe(204);
    expect(await answerWithin(carrier, 300)).toBe('pending');
    expect(emu.refersOut.map((r) => r.answer)).toEqual([403]);
    expect(emu.channel(carrier)?.state).toBe('Up');
    expect(emu.bridge(bridge)?.channels).toContain(carrier);
    await mark();
    expect(events.events.slice(since).filter((e) => idOf(e) === carrier)).toEqual([]);

    // A second call, out of its bridge: the answer returns at once, endpoint-name form referred to its contact.
    const other = carrierCall();
    emu.removeFromBridge(other.bridge, other.carrier);
    expect((await ari(emu, 'POST', `/channels/${other.carrier}/redirect`, { query: { endpoint: 'PJSIP/carrier' } })).status).toBe(204);
    expect(await answerWithin(other.carrier, 1000)).toBe(204);
    expect(emu.refersOut[1]).toEqual({ channelId: other.carrier, endpoint: 'carrier', referTo: 'sip:carrier@127.0.0.1', answer: 403 });
    expect(emu.channel(other.carrier)?.state).toBe('Up');
  });
});
