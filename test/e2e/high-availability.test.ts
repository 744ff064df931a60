// The shared registry and the active/standby pair as an operator runs
// them: real service processes (src/main.ts), a real redis-server, the ARI
// emulator as the Asterisk node.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { nodeKeys } from '../../src/registry/redis-keys.js';
import { NODE_FIELD } from '../../src/registry/shared-store.js';
import { AriEmulator } from '../emulator/index.js';
import { RedisServer } from '../helpers/redis-server.js';
import { ServiceProcess } from '../integration/service-process.js';
import { waitUntil } from './harness.js';

const ARI = { app: 'ari-transfer', username: 'asterisk', password: 'pw-secret' };
const NODE = 'ast1';
let redis: RedisServer;
let emu: AriEmulator;
const services: ServiceProcess[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis.stop();
});
beforeEach(async () => {
  await redis.reset();
  emu = await AriEmulator.start(ARI);
});
afterEach(async () => {
  for (const s of services.splice(0)) await s.kill();
  await emu.close();
});

function start(env: Record<string, string> = {}): ServiceProcess {
  const s = ServiceProcess.start({
    ARI_URL: emu.url,
    ARI_USERNAME: ARI.username,
    ARI_PASSWORD: ARI.password,
    ARI_RECONNECT_MAX_MS: '200',
    ROUTING: 'none',
    REGISTRY: 'redis',
    REDIS_URL: redis.url,
    ASTERISK_NODE: NODE,
    ...env,
  });
  services.push(s);
  return s;
}

async function readyz(s: ServiceProcess): Promise<{ code: number; body: Record<string, unknown> }> {
  const res = await fetch(`${s.apiUrl}/readyz`);
  return { code: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function publishedChannels(): Promise<string[]> {
  const client = redis.client();
  try {
    return Object.keys(await client.hgetall(nodeKeys('ari-transfer', NODE).channels))
      .filter((f) => f !== NODE_FIELD)
      .sort();
  } finally {
    client.disconnect();
  }
}

const until = (what: string, check: () => boolean | Promise<boolean>, ms = 10_000) => waitUntil(check, what, ms);

describe('REGISTRY=redis', () => {
  it('exits 2 with one line naming REDIS_URL when Redis is unreachable at start', async () => {
    await redis.stop();
    const s = start();
    expect(await s.exited).toEqual({ code: 2, signal: null });
    const stderr = s.output.split('\n').filter((l) => l.startsWith('ari-transfer:'));
    expect(stderr).toEqual([`ari-transfer: Redis at ${redis.url} is unreachable: connect ECONNREFUSED 127.0.0.1:${redis.port} (REDIS_URL, REGISTRY=redis)`]);
  }, 20_000);

  it("publishes the node's channels; Redis lost: /readyz says so and calls go on; Redis back: ready again, published again", async () => {
    const s = start();
    await until('ready', () => s.ready());
    // Stasis() needs the application connected, as on a real Asterisk.
    const alice = emu.phoneCalls({ endpoint: '1001', exten: '1002', callId: 'call-alice' }).id;
    await until('alice published', async () => (await publishedChannels()).join() === alice);

    await redis.stop();
    await until('not ready', async () => !(await s.ready()));
    expect(await readyz(s)).toEqual({
      code: 503,
      body: { status: 'not ready', reason: 'the shared registry (Redis) is unreachable or not yet published: cross-node look-ups fail' },
    });
    // The node goes on: a new call is in the registry in memory meanwhile.
    const bob = emu.phoneCalls({ endpoint: '1002', exten: '1001', callId: 'call-bob' }).id;
    await until('bob in the registry', async () => {
      const calls = (await (await fetch(`${s.apiUrl}/calls`)).json()) as { channels: { id: string }[] };
      return calls.channels.some((c) => c.id === bob);
    });

    await redis.restart();
    await until('ready again', () => s.ready());
    expect(await publishedChannels()).toEqual([alice, bob].sort());
    expect(s.running).toBe(true);
  }, 30_000);
});

describe('HA_MODE=active-standby', () => {
  const HA = { HA_MODE: 'active-standby', HA_LEASE_MS: '1500' };

  it('one serves the node, the other waits; SIGKILL the active: the standby takes over within the lease; the returning one is the standby', async () => {
    const a = start({ ...HA, INSTANCE_ID: 'a' });
    await until('a ready', () => a.ready());
    const b = start({ ...HA, INSTANCE_ID: 'b' });
    await until('b listening', () => b.apiUrl !== undefined);
    await until('b to have tried the lease', () => b.messages().includes('standby: waiting for the lease'));
    expect(await readyz(a)).toEqual({ code: 200, body: { status: 'ready', role: 'active' } });
    expect(await readyz(b)).toEqual({ code: 503, body: { status: 'not ready', role: 'standby', reason: `standby: another instance holds the lease of node ${NODE}` } });
    expect(emu.connectedSockets).toBe(1);

    await a.kill();
    // How soon is the benchmark's to measure (`npm run bench`), not a test's to assert.
    await until('b ready', () => b.ready());
    expect(await readyz(b)).toEqual({ code: 200, body: { status: 'ready', role: 'active' } });
    expect(b.messages()).toContain('active: took over from a');
    const metrics = await (await fetch(`${b.apiUrl}/metrics`)).text();
    expect(metrics).toMatch(/^ari_transfer_ha_active 1$/m);
    expect(metrics).toMatch(/^ari_transfer_ha_failovers_total 1$/m);
    // Every key of the pair expires: the lease with HA_LEASE_MS, the last holder's name within a week.
    const client = redis.client();
    const ttls = await Promise.all(['ari-transfer:node:ast1:lease', 'ari-transfer:node:ast1:lease:last-holder'].map((k) => client.pttl(k)));
    client.disconnect();
    expect(ttls[0]).toBeGreaterThan(0);
    expect(ttls[0]).toBeLessThanOrEqual(1500);
    expect(ttls[1]).toBeGreaterThan(1500);
    expect(ttls[1]).toBeLessThanOrEqual(7 * 24 * 3600 * 1000);

    const again = start({ ...HA, INSTANCE_ID: 'a' });
    await until('a listening again', () => again.apiUrl !== undefined);
    await until('a to wait', () => again.messages().includes('standby: waiting for the lease'));
    expect((await readyz(again)).body.role).toBe('standby');
    expect(emu.connectedSockets).toBe(1);
  }, 30_000);

  it('SIGTERM the active: it gives the lease up, the standby takes over at its next try, long before the lease would have expired', async () => {
    const a = start({ ...HA, HA_LEASE_MS: '20000', INSTANCE_ID: 'a' });
    await until('a ready', () => a.ready());
    const b = start({ ...HA, HA_LEASE_MS: '20000', INSTANCE_ID: 'b' });
    await until('b to wait', () => b.messages().includes('standby: waiting for the lease'));
    a.signal('SIGTERM');
    expect(await a.exited).toEqual({ code: 0, signal: null });
    // Far sooner than the 20 s lease: a standby tries every 4 s (a fifth of it).
    await until('b ready', () => b.ready(), 8_000);
    expect(b.messages()).toContain('active: took over from a');
  }, 30_000);

  it('the active one cut off from Asterisk for a lease period gives the lease up and exits 3; the standby takes over and serves once Asterisk is back', async () => {
    const a = start({ ...HA, INSTANCE_ID: 'a' });
    await until('a ready', () => a.ready());
    const b = start({ ...HA, INSTANCE_ID: 'b' });
    await until('b to wait', () => b.messages().includes('standby: waiting for the lease'));
    emu.refuseWebSockets(true);
    emu.dropWebSockets();
    expect(await a.exited).toEqual({ code: 3, signal: null });
    expect(a.messages().find((m) => m.startsWith('stepping down: Asterisk unreachable for'))).toBeDefined();
    await until('b to take over', () => b.messages().includes('active: took over from a'));
    emu.refuseWebSockets(false);
    await until('b ready', () => b.ready());
  }, 30_000);

  it('an active instance whose lease another one took exits 3', async () => {
    const a = start({ ...HA, INSTANCE_ID: 'a' });
    await until('a ready', () => a.ready());
    const client = redis.client();
    await client.set('ari-transfer:node:ast1:lease', 'intruder', 'PX', 60_000);
    client.disconnect();
    expect(await a.exited).toEqual({ code: 3, signal: null });
    expect(a.messages()).toContain('stepping down: another instance holds the lease');
  }, 20_000);
});
