// Built-in call routing (ROUTING=dial) end to end: the service against the
// ARI emulator. A phone's call into the application rings while the service
// dials the extension it asked for; when the callee answers both talk in a
// new bridge; when either party goes, the call is over for the other too.
// Assertions are what the parties observe: bridge membership, who was hung
// up with which cause, ringing, and what the service logged.
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { loadConfig } from '../../src/config.js';
import { TransferService } from '../../src/service.js';
import { captureLogs } from '../helpers/log-capture.js';
import type { RequestRecord } from '../emulator/index.js';
import { originates, membersOf, quiescent, startHarness, waitUntil, type Harness } from './harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function start(env: Record<string, string> = {}): Promise<Harness> {
  h = await startHarness({ ROUTING: 'dial', ...env });
  return h;
}

const sorted = (...ids: string[]) => ids.slice().sort();


/** The channel id the service chose for the n-th originate (`POST /channels/{id}`). */
function legIdOf(request: RequestRecord): string {
  const m = /^\/channels\/([^/]+)$/.exec(request.path);
  if (!m) throw new Error(`originate without a channel id: ${request.path}`);
  return m[1]!;
}

/** Waits until the registry holds nothing any more (every channel and bridge forgotten). */
async function registryEmpty(hh: Harness): Promise<void> {
  await waitUntil(async () => {
    const c = await hh.service.registry.store.counts();
    return c.channels === 0 && c.bridges === 0 && c.callIds === 0;
  }, 'the registry to be empty');
}

/**
 * Events are applied in arrival order: once a later call is known, every
 * earlier event was handled. Only for ROUTING=none (with routing on, the
 * sentinel call would be routed).
 */
async function serviceCaughtUp(hh: Harness): Promise<void> {
  const sentinel = hh.emu.phoneCalls({ endpoint: 'sentinel', exten: '999' });
  await waitUntil(async () => (await hh.service.registry.store.getChannel(sentinel.id)) !== undefined, 'the service to see the sentinel call');
}

/** A phone calls `callee` and the call gets connected; returns the caller's channel, the leg to the callee and their bridge. */
async function routedCall(hh: Harness, caller: string, callee: string) {
  const before = originates(hh).length;
  const call = hh.emu.phoneCalls({ endpoint: caller, exten: callee });
  await waitUntil(() => originates(hh).length > before, `the service to dial ${callee}`);
  const legId = legIdOf(originates(hh)[before]!);
  await waitUntil(() => {
    const b = hh.emu.channel(call.id)?.bridgeId;
    return b !== undefined && membersOf(hh, b)?.length === 2 && hh.emu.channel(legId)?.bridgeId === b;
  }, `${caller} and ${callee} to be bridged`);
  return { callerId: call.id, legId, bridgeId: hh.emu.channel(call.id)!.bridgeId! };
}

describe('routing a call (ROUTING=dial)', () => {
  it('the caller hears ringing while the callee rings; when the callee answers both are answered into one new bridge', async () => {
    const { emu } = await start();
    emu.setEndpoint('carol', { kind: 'no-answer' });
    const alice = emu.phoneCalls({ endpoint: 'alice', exten: 'carol', callerName: 'Alice' });

    await waitUntil(() => originates(h!).length === 1, 'the service to dial carol');
    const request = originates(h!)[0]!;
    const legId = legIdOf(request);
    // The service chose the leg's id (POST /channels/{id}), dialled PJSIP/carol with the caller's caller id.
    expect(legId).toMatch(/^route-/);
    expect(request.status).toBe(200);
    expect(request.query).toMatchObject({
      endpoint: 'PJSIP/carol',
      app: 'ari-transfer',
      appArgs: 'ari-transfer-leg,route',
      callerId: '"Alice" <alice>',
    });

    // Carol's phone rings and shows Alice; Alice hears ringing and is not answered yet.
    await waitUntil(() => emu.channel(legId)?.state === 'Ringing' && emu.channel(alice.id)?.ringing === true, 'carol to ring and alice to hear it');
    expect(emu.channel(legId)).toMatchObject({ endpoint: 'carol', direction: 'outbound', caller: { name: 'Alice', number: 'alice' } });
    expect(emu.channel(alice.id)?.state).toBe('Ring');
    expect(emu.bridges()).toEqual([]);
    expect(emu.requests.filter((r) => r.path === `/channels/${alice.id}/answer`)).toEqual([]);

    emu.phoneAnswers(legId);
    // Joined first, answered last: a REFER right after the 200 OK finds the call connected.
    await waitUntil(() => emu.channel(alice.id)?.state === 'Up', 'the caller to be answered');
    expect(emu.requests.filter((r) => /answer$|addChannel$/.test(r.path)).map((r) => r.path.split('/').pop())).toEqual(['addChannel', 'answer']);
    const [bridge] = emu.bridges();
    expect(emu.bridges()).toHaveLength(1);
    expect(membersOf(h!, bridge!.id)).toEqual(sorted(alice.id, legId));
    expect(emu.channel(alice.id)?.state).toBe('Up');
    expect(emu.channel(legId)?.state).toBe('Up');
    // A bridge the service created for this call.
    expect(emu.requests.some((r) => r.method === 'POST' && r.path === `/bridges/${bridge!.id}` && r.status === 200)).toBe(true);
    expect(emu.hangups).toEqual([]);
    await waitUntil(() => h!.logs.lines.some((l) => l.msg === 'call connected'), 'the service to log the connection');
    expect(h!.logs.lines.find((l) => l.msg === 'call connected')).toMatchObject({ callerChannelId: alice.id, calleeChannelId: legId, bridgeId: bridge!.id });
  });

  // Ringback played in-band (inband_progress=yes) only stops on an explicit
  // stop indication, so the router must stop it once the call is connected.
  it('the caller no longer hears ringing once the call is connected', async () => {
    const { emu } = await start();
    const { callerId } = await routedCall(h!, 'alice', 'carol');
    await waitUntil(() => h!.logs.lines.some((l) => l.msg === 'call connected'), 'the service to finish connecting');
    expect(emu.channel(callerId)?.state).toBe('Up');
    expect(emu.channel(callerId)?.ringing).toBe(false);
  });

  it('the caller hangs up: the callee is hung up and the bridge deleted; nothing is left', async () => {
    const { emu } = await start();
    const call = await routedCall(h!, 'alice', 'carol');
    emu.phoneHangsUp(call.callerId);

    await waitUntil(() => emu.channels().length === 0 && emu.bridges().length === 0, 'the call to be torn down');
    expect(emu.hangups.map((x) => [x.channelId, x.cause, x.by])).toEqual([
      [call.callerId, 16, 'phone'],
      [call.legId, 16, 'ari'],
    ]);
    expect(emu.requests.filter((r) => r.method === 'DELETE' && r.path === `/bridges/${call.bridgeId}`).map((r) => r.status)).toEqual([204]);
    await registryEmpty(h!);
  });

  it('the caller hangs up just as the callee answers, before the call is connected: the callee is hung up, the bridge deleted once', async () => {
    const { emu } = await start();
    const alice = emu.phoneCalls({ endpoint: 'alice', exten: 'carol' });
    // Both are in the bridge; alice's BYE lands before the router answers her.
    emu.beforeNext({ method: 'POST', path: new RegExp(`^/channels/${alice.id}/answer$`), run: () => emu.phoneHangsUp(alice.id) });
    // Its 404 comes after the hangup's events, which already end the call.
    emu.delayNext({ method: 'POST', path: new RegExp(`^/channels/${alice.id}/answer$`), delayMs: 100, effect: 'on-arrival' });
    await waitUntil(() => emu.hangups.length === 2 && emu.bridges().length === 0, 'the call to be torn down');
    const legId = legIdOf(originates(h!)[0]!);
    expect(emu.hangups.map((x) => [x.channelId, x.cause, x.by])).toEqual([
      [alice.id, 16, 'phone'],
      [legId, 16, 'ari'],
    ]);
    await waitUntil(() => emu.requests.some((r) => r.path === `/channels/${alice.id}/answer`), 'the late answer to be refused');
    expect(emu.requests.find((r) => r.path === `/channels/${alice.id}/answer`)?.status).toBe(404);
    await quiescent(h!);
    expect(emu.requests.filter((r) => r.method === 'DELETE' && r.path.startsWith('/bridges/')).map((r) => r.status)).toEqual([204]);
    expect(emu.channels()).toEqual([]);
    await registryEmpty(h!);
  });

  it('a call connected before the service restarted is still ended by the new one: the caller hangs up, the callee is hung up', async () => {
    const { emu } = await start();
    const call = await routedCall(h!, 'alice', 'carol');
    // A new process: its router starts knowing no call; the bridge's name tells it which are its own.
    await h!.service.stop();
    const again = new TransferService(loadConfig({ ARI_URL: emu.url, ARI_USERNAME: 'asterisk', ARI_PASSWORD: 'pw-secret', ROUTING: 'dial' }), captureLogs('debug').logger);
    again.start();
    try {
      await waitUntil(() => again.ready, 'the new service to connect and resync');
      emu.phoneHangsUp(call.callerId);
      await waitUntil(() => emu.channels().length === 0 && emu.bridges().length === 0, 'the call to be torn down');
      expect(emu.hangups.map((x) => [x.channelId, x.by])).toEqual([
        [call.callerId, 'phone'],
        [call.legId, 'ari'],
      ]);
    } finally {
      await again.stop();
    }
  });

  it('the callee hangs up: the caller is hung up and the bridge deleted; nothing is left', async () => {
    const { emu } = await start();
    const call = await routedCall(h!, 'alice', 'carol');
    emu.phoneHangsUp(call.legId);

    await waitUntil(() => emu.channels().length === 0 && emu.bridges().length === 0, 'the call to be torn down');
    expect(emu.hangups.map((x) => [x.channelId, x.cause, x.by])).toEqual([
      [call.legId, 16, 'phone'],
      [call.callerId, 16, 'ari'],
    ]);
    await registryEmpty(h!);
  });

  describe('the callee is not reached: the caller is hung up with the matching cause', () => {
    it.each([
      { behaviour: 'busy', cause: 17, legCause: 17 },
      { behaviour: 'reject', cause: 21, legCause: 21 },
      { behaviour: 'congestion', cause: 34, legCause: 34 },
    ] as const)('callee $behaviour → caller cause $cause', async ({ behaviour, cause, legCause }) => {
      const { emu } = await start();
      emu.setEndpoint('carol', { kind: behaviour });
      const alice = emu.phoneCalls({ endpoint: 'alice', exten: 'carol' });

      await waitUntil(() => emu.channel(alice.id) === undefined, 'the caller to be hung up');
      await quiescent(h!);
      const legId = legIdOf(originates(h!)[0]!);
      expect(emu.hangups.map((x) => [x.channelId, x.cause, x.by])).toEqual([
        [legId, legCause, 'phone'],
        [alice.id, cause, 'ari'],
      ]);
      expect(emu.channels()).toEqual([]);
      expect(emu.bridges()).toEqual([]);
      await registryEmpty(h!);
    });

    it('callee unreachable (originate fails) → caller cause 1 (unallocated), no leg exists', async () => {
      const { emu } = await start();
      emu.setEndpoint('carol', { kind: 'unreachable' });
      const alice = emu.phoneCalls({ endpoint: 'alice', exten: 'carol' });

      await waitUntil(() => emu.channel(alice.id) === undefined, 'the caller to be hung up');
      await quiescent(h!);
      expect(originates(h!).map((r) => r.status)).toEqual([500]);
      expect(emu.hangups.map((x) => [x.channelId, x.cause, x.by])).toEqual([[alice.id, 1, 'ari']]);
      expect(emu.channels()).toEqual([]);
      await registryEmpty(h!);
    });

    it('no answer within ROUTING_TIMEOUT → caller cause 19 (no answer), the ringing leg is gone', async () => {
      const { emu } = await start({ ROUTING_TIMEOUT: '1' });
      emu.setEndpoint('carol', { kind: 'no-answer' });
      const alice = emu.phoneCalls({ endpoint: 'alice', exten: 'carol' });
      await waitUntil(() => originates(h!).length === 1, 'the service to dial carol');
      const legId = legIdOf(originates(h!)[0]!);
      await waitUntil(() => emu.channel(legId)?.state === 'Ringing', 'carol to ring');

      await waitUntil(() => emu.channel(alice.id) === undefined, 'the caller to be hung up', 5000);
      await quiescent(h!);
      expect(emu.channel(legId)).toBeUndefined();
      const causes = new Map(emu.hangups.map((x) => [x.channelId, x.cause]));
      expect(causes.get(alice.id)).toBe(19);
      // The service cancelled the leg itself (Asterisk's own timer is only a backstop).
      expect(emu.hangups.find((x) => x.channelId === legId)?.by).toBe('ari');
      expect(emu.channels()).toEqual([]);
      await registryEmpty(h!);
    });
  });

  it('the caller hangs up while the callee rings: the ringing leg is cancelled, nothing is left', async () => {
    const { emu } = await start();
    emu.setEndpoint('carol', { kind: 'no-answer' });
    const alice = emu.phoneCalls({ endpoint: 'alice', exten: 'carol' });
    await waitUntil(() => originates(h!).length === 1, 'the service to dial carol');
    const legId = legIdOf(originates(h!)[0]!);
    await waitUntil(() => emu.channel(legId)?.state === 'Ringing' && emu.channel(alice.id)?.ringing === true, 'carol to ring');

    emu.phoneHangsUp(alice.id);
    await waitUntil(() => emu.channel(legId) === undefined, 'the ringing leg to be cancelled');
    await quiescent(h!);
    expect(emu.hangups.map((x) => [x.channelId, x.by])).toEqual([
      [alice.id, 'phone'],
      [legId, 'ari'],
    ]);
    expect(emu.channels()).toEqual([]);
    expect(emu.bridges()).toEqual([]);
    await registryEmpty(h!);
  });

  it.each(['a&b', 'carol@trunk', '1002,tT', 'PJSIP/carol'])(
    'an extension that cannot be dialled (%s): the caller is hung up (unallocated), nothing is originated',
    async (exten) => {
      const { emu } = await start();
      const alice = emu.phoneCalls({ endpoint: 'alice', exten });

      await waitUntil(() => emu.channel(alice.id) === undefined, 'the caller to be hung up');
      await quiescent(h!);
      expect(emu.hangups.map((x) => [x.channelId, x.cause, x.by])).toEqual([[alice.id, 1, 'ari']]);
      expect(originates(h!)).toEqual([]);
      expect(h!.logs.lines.find((l) => l.msg === 'call to an extension that cannot be dialled; hanging up')).toMatchObject({
        level: 40,
        callerChannelId: alice.id,
      });
      await registryEmpty(h!);
    },
  );

  it('never routes its own legs: exactly one originate per call', async () => {
    const { emu } = await start();
    const first = await routedCall(h!, 'alice', 'carol');
    const second = await routedCall(h!, 'dave', 'erin');
    // The legs' StasisStart was handled before the calls were connected
    // (the dial settles on that same event), so any routing of them would show by now.
    await waitUntil(() => h!.logs.lines.filter((l) => l.msg === 'call connected').length === 2, 'both calls to be connected');

    expect(originates(h!).map(legIdOf)).toEqual([first.legId, second.legId]);
    expect(h!.logs.lines.filter((l) => l.msg === 'routing the call').map((l) => l.callerChannelId)).not.toContain(first.legId);
    expect(h!.logs.lines.filter((l) => l.msg === 'routing the call').map((l) => l.callerChannelId)).not.toContain(second.legId);
    expect(membersOf(h!, first.bridgeId)).toEqual(sorted(first.callerId, first.legId));
    expect(membersOf(h!, second.bridgeId)).toEqual(sorted(second.callerId, second.legId));
    expect(emu.channel(first.legId)?.state).toBe('Up');
  });

  it('a leg placed before a restart (StasisStart with ari-transfer-leg args) is hung up with a warning', async () => {
    const { emu } = await start();
    const stale = emu.originate({ endpoint: 'PJSIP/dave', app: 'ari-transfer', appArgs: 'ari-transfer-leg,transfer' });

    await waitUntil(() => emu.hangups.some((x) => x.channelId === stale.id), 'the stale leg to be hung up');
    expect(emu.hangups.map((x) => [x.channelId, x.cause, x.by])).toEqual([[stale.id, 16, 'ari']]);
    expect(emu.channels()).toEqual([]);
    expect(originates(h!)).toEqual([]);
    expect(h!.logs.lines.find((l) => l.msg === 'hanging up a leg this service placed before it restarted')).toMatchObject({
      level: 40,
      channelId: stale.id,
    });
    await registryEmpty(h!);
  });
});

describe('ROUTING=none', () => {
  it('a phone call enters the application and nothing is originated, answered or rung', async () => {
    const { emu } = await start({ ROUTING: 'none' });
    const alice = emu.phoneCalls({ endpoint: 'alice', exten: 'carol' });
    await waitUntil(async () => (await h!.service.registry.store.getChannel(alice.id)) !== undefined, 'the service to see the call');
    await serviceCaughtUp(h!);

    expect(originates(h!)).toEqual([]);
    expect(emu.requests.filter((r) => r.path.startsWith(`/channels/${alice.id}/`))).toEqual([]);
    expect(emu.channel(alice.id)).toMatchObject({ state: 'Ring', ringing: false, inStasis: true });
    expect(emu.hangups).toEqual([]);
    expect(h!.logs.lines.filter((l) => l.msg === 'routing the call')).toEqual([]);
  });

  it('connects with subscribeAll=true: it sees a bridge no channel of its application is in', async () => {
    const { emu } = await start({ ROUTING: 'none' });
    const connected = h!.logs.lines.find((l) => l.msg === 'ARI events connected');
    expect(new URL(String(connected?.url)).searchParams.get('subscribeAll')).toBe('true');

    // Only a subscribeAll socket receives BridgeCreated for someone else's empty bridge.
    const other = emu.createBridge({ name: 'another-apps-bridge' });
    await waitUntil(async () => (await h!.service.registry.store.getBridge(other.id)) !== undefined, 'the service to see the foreign bridge');
  });

  it('(contrast) ROUTING=dial connects without subscribeAll', async () => {
    await start();
    const connected = h!.logs.lines.find((l) => l.msg === 'ARI events connected');
    expect(new URL(String(connected?.url)).searchParams.get('subscribeAll')).toBe('false');
  });

  it('a leg placed before a restart is hung up with a warning here too', async () => {
    const { emu } = await start({ ROUTING: 'none' });
    const stale = emu.originate({ endpoint: 'PJSIP/dave', app: 'ari-transfer', appArgs: 'ari-transfer-leg,transfer' });
    await waitUntil(() => emu.channel(stale.id) === undefined, 'the stale leg to be hung up');
    expect(emu.hangups.map((x) => [x.channelId, x.by])).toEqual([[stale.id, 'ari']]);
    expect(h!.logs.lines.some((l) => l.msg === 'hanging up a leg this service placed before it restarted' && l.channelId === stale.id)).toBe(true);
  });
});

describe('calls of other applications', () => {
  it('are never routed, even when subscribeAll shows them', async () => {
    const { emu } = await start({ ARI_SUBSCRIBE_ALL: 'true' });
    // Another ARI application is connected, and a call enters it.
    const other = new WebSocket(`${emu.url.replace('http', 'ws')}/ari/events?app=other-app`, {
      headers: { Authorization: `Basic ${Buffer.from('asterisk:pw-secret').toString('base64')}` },
    });
    await new Promise((resolve, reject) => other.once('open', resolve).once('error', reject));
    try {
      const call = emu.phoneCalls({ endpoint: 'alice', exten: 'carol', app: 'other-app' });
      await waitUntil(async () => (await h!.service.registry.store.getChannel(call.id)) !== undefined, 'the service to see the call');
      await new Promise((r) => setTimeout(r, 50));
      expect(emu.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/channels'))).toEqual([]);
      expect(emu.channel(call.id)?.state).toBe('Ring');
    } finally {
      other.close();
    }
  });
});

