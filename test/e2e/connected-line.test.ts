// Connected line after transfers of routed calls (ROUTING=dial), on the
// emulator, which sends a phone a connected-line update as Asterisk does
// (test/fixtures/traces/transfer-connected-line/README.md): alice calls bob,
// bob transfers her to carol; afterwards alice's phone shows carol (the
// number dialled) and carol's phone shows alice, once each, and only after
// bob heard his 200.
import { afterEach, describe, expect, it } from 'vitest';
import type { EmulatedChannel, RequestRecord } from '../emulator/index.js';
import { replacesFor, startHarness, transferFinished, waitUntil, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

function legTo(endpoint: string): EmulatedChannel | undefined {
  return h.emu.channels().find((c) => /^(route|transfer)-/.test(c.id) && c.name.startsWith(`PJSIP/${endpoint}-`));
}

async function aliceCallsBob() {
  h.emu.setEndpoint('bob', { kind: 'answer', afterMs: 5 });
  h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 5 });
  const alice = h.emu.phoneCalls({ endpoint: 'alice', exten: 'bob', callerName: 'Alice' });
  await waitUntil(() => legTo('bob')?.bridgeId !== undefined && h.emu.channel(alice.id)?.bridgeId !== undefined, 'alice and bob to be connected');
  return { alice, bobLeg: legTo('bob')! };
}

const updatesOf = (id: string) => h.emu.channel(id)?.connectedLineUpdates;
const isFinal200 = (r: RequestRecord) => r.path.endsWith('/transfer_progress') && r.query.states === 'channel_answered';
const identityWrites = () => h.emu.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/variable') && /^(CONNECTEDLINE|CALLERID)\(/.test(r.query.variable ?? ''));

/** The service's identity writes, each after the 200 in the order Asterisk received them. */
function writesAfterThe200(): { channel: string; variable: string; value: string }[] {
  const requests = h.emu.requests;
  const final = requests.findIndex(isFinal200);
  expect(final).toBeGreaterThanOrEqual(0);
  for (const w of identityWrites()) expect(requests.indexOf(w)).toBeGreaterThan(final);
  return identityWrites().map((r) => ({ channel: r.path.split('/')[2]!, variable: r.query.variable!, value: r.query.value! }));
}

describe('connected line after a transfer (TRANSFER_CONNECTED_LINE on)', () => {
  it('blind: after the 200 alice\'s phone is told <carol>, carol\'s phone "Alice" <alice>, once each; the routed call\'s join told nobody anything', async () => {
    h = await startHarness({ ROUTING: 'dial' });
    const { alice, bobLeg } = await aliceCallsBob();
    expect([updatesOf(alice.id), updatesOf(bobLeg.id)]).toEqual([[], []]);

    const refer = h.emu.sendRefer(bobLeg.id, { kind: 'blind', destination: 'carol' });
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await transferFinished(h);
    const carolLeg = legTo('carol')!;
    expect(updatesOf(alice.id)).toEqual([{ name: '', number: 'carol' }]);
    expect(updatesOf(carolLeg.id)).toEqual([{ name: 'Alice', number: 'alice' }]);
    // carol's leg takes her number as caller id before bob leaves (so Asterisk's own update at his leave says the same), then both are told.
    const writes = writesAfterThe200();
    expect(writes[0]).toEqual({ channel: carolLeg.id, variable: 'CALLERID(all)', value: '<carol>' });
    expect(writes.slice(1).sort((a, b) => a.channel.localeCompare(b.channel))).toEqual(
      [
        { channel: alice.id, variable: 'CONNECTEDLINE(all)', value: '<carol>' },
        { channel: carolLeg.id, variable: 'CONNECTEDLINE(all)', value: '"Alice" <alice>' },
      ].sort((a, b) => a.channel.localeCompare(b.channel)),
    );
    const bobHungUp = h.emu.requests.findIndex((r) => r.method === 'DELETE' && r.path === `/channels/${bobLeg.id}`);
    expect(h.emu.requests.findIndex((r) => r.query.variable === 'CALLERID(all)')).toBeLessThan(bobHungUp);
    expect(h.steps.filter((s) => s.step === 'connected-line' && s.level !== 'info')).toEqual([]);
  });

  it('attended: alice\'s phone is told <carol> (the number bob dialled), carol\'s phone "Alice" <alice>, once each', async () => {
    h = await startHarness({ ROUTING: 'dial' });
    const { alice, bobLeg } = await aliceCallsBob();
    const consult = h.emu.phoneCalls({ endpoint: 'bob', exten: 'carol', callerName: 'Bob' });
    await waitUntil(() => legTo('carol')?.bridgeId !== undefined, 'bob and carol to be connected');
    const carolLeg = legTo('carol')!;
    expect(updatesOf(carolLeg.id)).toEqual([]);

    const refer = h.emu.sendRefer(bobLeg.id, { kind: 'attended', destination: 'carol', replaces: replacesFor(h, consult.id) });
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await transferFinished(h);
    expect(updatesOf(alice.id)).toEqual([{ name: '', number: 'carol' }]);
    expect(updatesOf(carolLeg.id)).toEqual([{ name: 'Alice', number: 'alice' }]);
    expect(writesAfterThe200().map((w) => [w.channel, w.variable, w.value]).sort()).toEqual(
      [
        [carolLeg.id, 'CALLERID(all)', '<carol>'],
        [alice.id, 'CONNECTEDLINE(all)', '<carol>'],
        [carolLeg.id, 'CONNECTEDLINE(all)', '"Alice" <alice>'],
      ].sort(),
    );
  });

  it('a failure to set it is a step, never a failed transfer', async () => {
    h = await startHarness({ ROUTING: 'dial' });
    const { alice, bobLeg } = await aliceCallsBob();
    h.emu.failNext({ method: 'POST', path: /\/variable$/, query: { variable: 'CONNECTEDLINE(all)' }, status: 500, times: 2 });
    const refer = h.emu.sendRefer(bobLeg.id, { kind: 'blind', destination: 'carol' });
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    expect(await transferFinished(h)).toMatchObject({ result: 'completed' });
    expect(h.steps.filter((s) => s.step === 'connected-line' && s.level === 'warn').map((s) => s.message)).toEqual([
      'could not set CONNECTEDLINE(all)',
      'could not set CONNECTEDLINE(all)',
    ]);
    // Asterisk's own update at bob's leave still told both, from the caller ids the service put right.
    expect(updatesOf(alice.id)).toEqual([{ name: '', number: 'carol' }]);
  });
});

describe('TRANSFER_CONNECTED_LINE=off', () => {
  it('the service writes no connected line and no caller id', async () => {
    h = await startHarness({ ROUTING: 'dial', TRANSFER_CONNECTED_LINE: 'off' });
    const { bobLeg } = await aliceCallsBob();
    const refer = h.emu.sendRefer(bobLeg.id, { kind: 'blind', destination: 'carol' });
    expect(await refer.waitForTermination()).toEqual([100, 200]);
    await transferFinished(h);
    expect(identityWrites()).toEqual([]);
  });
});
