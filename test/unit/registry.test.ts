import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AriError } from '../../src/ari/errors.js';
import type { AriEvent, Bridge, Channel } from '../../src/ari/models.js';
import { parseEventFrame } from '../../src/ari/parse-event.js';
import { CallRegistry } from '../../src/registry/call-registry.js';
import { MemoryRegistryStore } from '../../src/registry/memory-store.js';
import { captureLogs } from '../helpers/log-capture.js';

// The real attended-transfer trace, as Asterisk sent it.
const recorded: AriEvent[] = readFileSync(new URL('../fixtures/traces/attended.events.jsonl', import.meta.url), 'utf8')
  .split('\n')
  .filter(Boolean)
  .flatMap((line) => {
    const parsed = parseEventFrame(line);
    return parsed.kind === 'event' ? [parsed.event] : [];
  });

// REST answers for the registry's own lookups, scripted per test.
function restWith(answers: { channels?: Channel[]; bridges?: Bridge[]; variables?: Record<string, string | number> } = {}) {
  const asked: string[] = [];
  return {
    asked,
    listChannels: async () => answers.channels ?? [],
    listBridges: async () => answers.bridges ?? [],
    getChannelVariable: async (id: string, variable: string) => {
      asked.push(`${id} ${variable}`);
      const value = answers.variables?.[`${id} ${variable}`];
      if (typeof value === 'number') throw new AriError('channels.getVariable', 'http', value, 'Unable to read provided function');
      if (value === undefined) throw new AriError('channels.getVariable', 'http', 404, 'Provided variable was not found');
      return value;
    },
  };
}

function newRegistry(rest = restWith()) {
  return new CallRegistry(new MemoryRegistryStore(), rest, captureLogs().logger);
}

const ids = { alice: 'ari-harness-1795265271.10', bob: 'ari-harness-1795265273.11', bobConsult: 'ari-harness-1795265274.12', carol: 'ari-harness-1795265274.13' };

describe('CallRegistry replaying the recorded attended transfer', () => {
  it('knows every leg by Call-ID and bridge at the moment of the REFER', async () => {
    const registry = newRegistry();
    const upToRefer = recorded.slice(0, recorded.findIndex((e) => e.type === 'ChannelTransfer'));
    for (const e of upToRefer) await registry.apply(e);

    const [byCallId] = await registry.store.channelsByCallId('REMOTE1-22442@127.0.0.1');
    expect(byCallId?.id).toBe(ids.bobConsult);
    expect(byCallId?.bridgeId).toBe('att-bridge-2');
    expect((await registry.store.getBridge('att-bridge-1'))?.channelIds.sort()).toEqual([ids.alice, ids.bob].sort());
    expect((await registry.store.getBridge('att-bridge-2'))?.channelIds.sort()).toEqual([ids.bobConsult, ids.carol].sort());
    expect((await registry.store.getChannel(ids.carol))?.callId).toBe('bd73bb98-9553-4b07-8ea2-7afcbd3198a4');
    expect((await registry.store.getChannel(ids.alice))?.caller).toEqual({ name: 'Alice', number: 'alice' });
  });

  it('follows the transfer and is empty once every channel and bridge is gone', async () => {
    const registry = newRegistry();
    const referAt = recorded.findIndex((e) => e.type === 'ChannelTransfer');
    const bobByeAt = recorded.findIndex((e, i) => i > referAt && e.type === 'ChannelHangupRequest' && e.channel.id === ids.bob);
    for (const e of recorded.slice(0, bobByeAt)) await registry.apply(e);
    expect((await registry.store.getChannel(ids.alice))?.bridgeId).toBe('att-bridge-2');
    expect(await registry.store.getChannel(ids.bobConsult)).toBeUndefined();
    expect(await registry.store.recentlyEnded(ids.bobConsult)).toBe(true);

    await registry.apply(recorded[bobByeAt]!);
    expect((await registry.store.getChannel(ids.bob))?.hangingUp).toBe(true);

    for (const e of recorded.slice(bobByeAt + 1)) await registry.apply(e);
    expect(await registry.store.counts()).toEqual({ channels: 0, bridges: 0, callIds: 0 });
  });
});

describe('CallRegistry lookups', () => {
  const stasisStart = (channel: Partial<Channel>): AriEvent => ({
    type: 'StasisStart',
    timestamp: 't',
    application: 'ari-transfer',
    args: [],
    channel: { ...(recorded.find((e) => e.type === 'StasisStart') as { channel: Channel }).channel, ...channel },
  });

  it('reads the Call-ID through CHANNEL(pjsip,call-id) when the snapshot has none', async () => {
    const rest = restWith({ variables: { 'c1 CHANNEL(pjsip,call-id)': 'abc@10.0.0.1' } });
    const registry = newRegistry(rest);
    await registry.apply(stasisStart({ id: 'c1', name: 'PJSIP/alice-00000001', protocol_id: '' }));
    await expect.poll(async () => (await registry.store.channelsByCallId('abc@10.0.0.1')).map((c) => c.id)).toEqual(['c1']);
  });

  it('an event applied while a transfer marks the channel loses neither: the update is one step', async () => {
    const registry = newRegistry();
    await registry.apply(stasisStart({ id: 'c1', name: 'PJSIP/alice-00000001', protocol_id: 'x@h' }));
    // Not awaited in between: the patch lands while the event is being applied.
    const applied = registry.apply({ ...stasisStart({ id: 'c1', name: 'PJSIP/alice-00000001', protocol_id: 'x@h', state: 'Ring' }), type: 'ChannelStateChange' } as AriEvent);
    const patched = registry.store.patchChannel('c1', { mohByService: true });
    await Promise.all([applied, patched]);
    expect(await registry.store.getChannel('c1')).toMatchObject({ state: 'Ring', mohByService: true });
  });

  it('never asks a Local channel for a SIP Call-ID', async () => {
    const rest = restWith();
    const registry = newRegistry(rest);
    await registry.apply(stasisStart({ id: 'l1', name: 'Local/echo@internal-00000000;1', protocol_id: '' }));
    expect(rest.asked).toEqual([]);
    expect((await registry.store.getChannel('l1'))?.callId).toBeUndefined();
  });

  it('reads SIP dialog tags once and caches them', async () => {
    const rest = restWith({ variables: { 'c1 CHANNEL(pjsip,local_tag)': 'L', 'c1 CHANNEL(pjsip,remote_tag)': 'R' } });
    const registry = newRegistry(rest);
    await registry.apply(stasisStart({ id: 'c1' }));
    expect(await registry.dialogTags('c1')).toEqual({ local: 'L', remote: 'R' });
    expect(await registry.dialogTags('c1')).toEqual({ local: 'L', remote: 'R' });
    expect(rest.asked).toEqual(['c1 CHANNEL(pjsip,local_tag)', 'c1 CHANNEL(pjsip,remote_tag)']);
  });

  it('gives no tags, and logs why, for a channel that cannot tell them', async () => {
    const rest = restWith({ variables: { 'c1 CHANNEL(pjsip,local_tag)': 500, 'c1 CHANNEL(pjsip,remote_tag)': 500 } });
    const registry = newRegistry(rest);
    await registry.apply(stasisStart({ id: 'c1' }));
    expect(await registry.dialogTags('c1')).toBeUndefined();
  });

  it('resyncs from GET /channels and /bridges, dropping what is gone', async () => {
    const registry = newRegistry(
      restWith({
        channels: [(recorded.find((e) => e.type === 'StasisStart') as { channel: Channel }).channel],
        bridges: [{ ...(recorded.find((e) => e.type === 'BridgeCreated') as { bridge: Bridge }).bridge, channels: [ids.alice] }],
      }),
    );
    await registry.apply(stasisStart({ id: 'stale', protocol_id: 'old@x' }));
    await registry.resync();
    expect(await registry.store.getChannel('stale')).toBeUndefined();
    expect((await registry.store.getChannel(ids.alice))?.bridgeId).toBe('att-bridge-1');
    expect(await registry.store.counts()).toEqual({ channels: 1, bridges: 1, callIds: 1 });
  });
});

describe('MemoryRegistryStore tombstones', () => {
  it('forgets ended channels after the TTL and beyond the cap', async () => {
    let now = 0;
    const store = new MemoryRegistryStore({ tombstoneTtlMs: 1000, maxTombstones: 2, now: () => now });
    await store.removeChannel('a');
    await store.removeChannel('b');
    await store.removeChannel('c');
    expect(await store.recentlyEnded('a')).toBe(false);
    expect(await store.recentlyEnded('c')).toBe(true);
    now = 2000;
    expect(await store.recentlyEnded('c')).toBe(false);
  });
});
