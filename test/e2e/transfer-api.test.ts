// Transfers started through the HTTP API (POST /transfers, then /complete
// or /cancel), end to end: real HTTP on loopback, the service against the
// ARI emulator. Asserts who ends up with whom, what was hung up, what the
// transferees heard, what GET /transfers/{id} says, and that no sipfrag was
// sent (no phone asked for these transfers).
import { afterEach, describe, expect, it } from 'vitest';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import { membersOf, originates, startHarness, twoPartyCall, waitUntil, type Harness, transferFinished } from './harness.js';

const TOKEN = 'test-token-0123456789abcdef';

let h: Harness;
let api: HttpServer;
afterEach(async () => {
  await api?.close();
  await h?.close();
});

async function aliceTalksToBob(env: Record<string, string> = {}) {
  h = await startHarness(env);
  api = await startHttpServer({ service: h.service, config: { host: '127.0.0.1', port: 0, token: TOKEN }, logger: h.logs.logger });
  return twoPartyCall(h);
}

async function call(method: string, path: string, body?: unknown, token: string | null = TOKEN) {
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, location: res.headers.get('location'), json: (text ? JSON.parse(text) : undefined) as any };
}

const sorted = (...ids: string[]) => ids.slice().sort();
const leg = () => h.emu.channels().find((c) => c.id.startsWith('transfer-'));
const progressSent = () => h.emu.requests.filter((r) => r.path.endsWith('/transfer_progress'));

describe('transfer API: blind', () => {
  it('POST /transfers: bob leaves, alice gets a new call to carol dialled as asked; GET says completed; no sipfrag', async () => {
    const { alice, bob, bridgeId } = await aliceTalksToBob();
    h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 50 });
    const started = await call('POST', '/transfers', {
      kind: 'blind',
      channelId: bob.id,
      destination: 'carol',
      timeout: 12,
      callerId: '"Support" <5000>',
      variables: { 'PJSIP_HEADER(add,X-Ticket)': '42' },
    });
    expect(started.status).toBe(202);
    expect(started.json).toEqual({ transferId: expect.stringMatching(/^[0-9a-f]{8}$/), state: 'checking', href: `/transfers/${started.json.transferId}` });
    expect(started.location).toBe(started.json.href);
    const summary = await transferFinished(h);
    expect(summary).toMatchObject({ kind: 'blind', result: 'completed', sipfrags: [] });
    const carol = leg()!;
    expect(membersOf(h, bridgeId)).toEqual(sorted(alice.id, carol.id));
    expect(h.emu.hangups.map((x) => [x.channelId, x.by])).toEqual([[bob.id, 'ari']]);
    const [originate] = originates(h);
    expect(originate!.query).toMatchObject({ endpoint: 'PJSIP/carol', timeout: '17', callerId: '"Support" <5000>' });
    expect(carol.variables['PJSIP_HEADER(add,X-Ticket)']).toBe('42');
    expect(progressSent()).toEqual([]);

    const got = await call('GET', started.json.href);
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ transferId: started.json.transferId, kind: 'blind', state: 'completed', result: 'completed', sourceChannelId: bob.id, destination: 'carol' });
    expect(got.json.steps.map((s: { step: string }) => s.step)).toEqual(expect.arrayContaining(['requested', 'policy', 'dial', 'join', 'hangup']));
  });

  it('the policy still applies: a denied destination ends rejected and nobody is called', async () => {
    const { alice, bob, bridgeId } = await aliceTalksToBob({ TRANSFER_DENY: '9.*' });
    const started = await call('POST', '/transfers', { kind: 'blind', channelId: bob.id, destination: '900' });
    expect(started.status).toBe(202);
    expect(await transferFinished(h)).toMatchObject({ result: 'rejected' });
    expect(originates(h)).toEqual([]);
    expect(membersOf(h, bridgeId)).toEqual(sorted(alice.id, bob.id));
    expect((await call('GET', started.json.href)).json).toMatchObject({ state: 'rejected', reason: 'destination refused (deny-list): destination "900" matches deny pattern ^(?:9.*)$' });
  });
});

describe('transfer API: attended', () => {
  /** bob consults carol through the API; resolves once they talk. */
  async function bobConsultsCarol(env: Record<string, string> = {}) {
    const call0 = await aliceTalksToBob(env);
    h.emu.setEndpoint('carol', { kind: 'answer', afterMs: 150 });
    const started = await call('POST', '/transfers', { kind: 'attended', channelId: call0.bob.id, destination: 'carol' });
    expect(started.status).toBe(202);
    const consultBridge = `consult-${started.json.transferId}`;
    // While carol rings: bob alone in the consultation bridge hearing her ring, alice hearing music.
    await waitUntil(() => leg()?.state === 'Ringing' && h.emu.channel(call0.bob.id)?.bridgeId === consultBridge, 'carol to ring for bob');
    expect(h.emu.channel(call0.bob.id)?.ringing).toBe(true);
    expect(h.emu.channel(call0.alice.id)?.mohPlaying).toBe(true);
    expect(membersOf(h, call0.bridgeId)).toEqual([call0.alice.id]);
    await waitUntil(() => membersOf(h, consultBridge)?.length === 2, 'bob and carol to talk');
    expect(h.emu.channel(call0.bob.id)?.ringing).toBe(false);
    expect((await call('GET', started.json.href)).json.state).toBe('consulted');
    return { ...call0, id: started.json.transferId as string, consultBridge, carol: leg()! };
  }

  it('complete: carol joins alice, bob is hung up, the consultation bridge is gone, alice hears no more music', async () => {
    const { alice, bob, bridgeId, id, consultBridge, carol } = await bobConsultsCarol();
    expect(membersOf(h, consultBridge)).toEqual(sorted(bob.id, carol.id));
    const done = await call('POST', `/transfers/${id}/complete`);
    expect(done).toMatchObject({ status: 200, json: { transferId: id, command: 'complete', state: 'consulted' } });
    expect(await transferFinished(h)).toMatchObject({ kind: 'attended', result: 'completed', sipfrags: [] });
    expect(membersOf(h, bridgeId)).toEqual(sorted(alice.id, carol.id));
    expect(h.emu.bridge(consultBridge)).toBeUndefined();
    expect(h.emu.hangups.map((x) => [x.channelId, x.by])).toEqual([[bob.id, 'ari']]);
    expect(h.emu.channel(alice.id)?.mohPlaying).toBe(false);
    expect(progressSent()).toEqual([]);
    // Done: nothing more to complete.
    expect((await call('POST', `/transfers/${id}/complete`)).status).toBe(404);
  });

  it('cancel: carol is hung up, bob is back with alice, her music stops, the consultation bridge is gone', async () => {
    const { alice, bob, bridgeId, id, consultBridge, carol } = await bobConsultsCarol();
    expect((await call('POST', `/transfers/${id}/cancel`)).status).toBe(200);
    expect(await transferFinished(h)).toMatchObject({ result: 'failed', reason: 'cancelled through the API' });
    expect(membersOf(h, bridgeId)).toEqual(sorted(alice.id, bob.id));
    expect(h.emu.bridge(consultBridge)).toBeUndefined();
    expect(h.emu.hangups.map((x) => [x.channelId, x.by])).toEqual([[carol.id, 'ari']]);
    expect(h.emu.channel(alice.id)?.mohPlaying).toBe(false);
  });

  it('bob hangs up while talking to carol: the transfer completes, as a phone hanging up in consultation does', async () => {
    const { alice, bob, bridgeId, consultBridge, carol } = await bobConsultsCarol();
    h.emu.phoneHangsUp(bob.id);
    expect(await transferFinished(h)).toMatchObject({ result: 'completed' });
    expect(membersOf(h, bridgeId)).toEqual(sorted(alice.id, carol.id));
    expect(h.emu.bridge(consultBridge)).toBeUndefined();
    expect(h.emu.channel(alice.id)?.mohPlaying).toBe(false);
  });

  it('carol hangs up during the consultation: bob is back with alice', async () => {
    const { alice, bob, bridgeId, carol } = await bobConsultsCarol();
    h.emu.phoneHangsUp(carol.id);
    expect(await transferFinished(h)).toMatchObject({ result: 'failed', reason: 'the target hung up during the consultation' });
    expect(membersOf(h, bridgeId)).toEqual(sorted(alice.id, bob.id));
    expect(h.emu.channel(alice.id)?.mohPlaying).toBe(false);
  });

  it('while carol still rings: complete is refused (409), cancel brings bob back and cancels her call', async () => {
    const { alice, bob, bridgeId } = await aliceTalksToBob();
    h.emu.setEndpoint('carol', { kind: 'no-answer' });
    const started = await call('POST', '/transfers', { kind: 'attended', channelId: bob.id, destination: 'carol' });
    await waitUntil(() => leg()?.state === 'Ringing', 'carol to ring');
    const ringing = leg()!.id;
    await waitUntil(() => h.service.transfers.stateOf(started.json.transferId) === 'consulting', 'the consultation to be under way');
    expect(await call('POST', `/transfers/${started.json.transferId}/complete`)).toMatchObject({
      status: 409,
      json: { code: 'ERR_WRONG_STATE', message: `transfer ${started.json.transferId} cannot complete now: it is consulting` },
    });
    expect((await call('POST', `/transfers/${started.json.transferId}/cancel`)).status).toBe(200);
    expect(await transferFinished(h)).toMatchObject({ result: 'failed', reason: 'cancelled through the API before the target answered' });
    expect(membersOf(h, bridgeId)).toEqual(sorted(alice.id, bob.id));
    expect(h.emu.hangups.find((x) => x.channelId === ringing)?.by).toBe('ari');
    expect(h.emu.channel(bob.id)?.ringing).toBe(false);
  });

  it('carol busy: bob is back with alice, the transfer failed', async () => {
    const { alice, bob, bridgeId } = await aliceTalksToBob();
    h.emu.setEndpoint('carol', { kind: 'busy', afterMs: 50 });
    expect((await call('POST', '/transfers', { kind: 'attended', channelId: bob.id, destination: 'carol' })).status).toBe(202);
    expect(await transferFinished(h)).toMatchObject({ result: 'failed', reason: 'target busy: User busy' });
    expect(membersOf(h, bridgeId)).toEqual(sorted(alice.id, bob.id));
    expect(h.emu.channel(alice.id)?.mohPlaying).toBe(false);
    expect(h.emu.bridges().map((b) => b.id)).toEqual([bridgeId]);
  });
});

describe('transfer API: bad requests', () => {
  it('400 for a missing or unknown field, a wrong kind, a destination that could inject into the dial string', async () => {
    const { bob } = await aliceTalksToBob();
    expect(await call('POST', '/transfers', { kind: 'blind', channelId: bob.id })).toMatchObject({
      status: 400,
      json: { code: 'FST_ERR_VALIDATION', message: "body must have required property 'destination'" },
    });
    expect((await call('POST', '/transfers', { kind: 'blind', channelId: bob.id, destination: '1003', extra: 1 })).json.message).toBe('body must NOT have additional properties');
    expect((await call('POST', '/transfers', { kind: 'park', channelId: bob.id, destination: '1003' })).json.message).toBe('body/kind must be equal to one of the allowed values');
    expect((await call('POST', '/transfers', { kind: 'blind', channelId: bob.id, destination: '1003', timeout: '5' })).json.message).toBe('body/timeout must be number');
    expect(await call('POST', '/transfers', { kind: 'blind', channelId: bob.id, destination: '1003&PJSIP/9' })).toMatchObject({
      status: 400,
      json: { code: 'ERR_BAD_DESTINATION', message: expect.stringMatching(/forbidden character '&'/) },
    });
    expect(originates(h)).toEqual([]);
  });

  it('404 for an unknown channel or transfer, 409 for a channel already transferring or alone, 409 to complete a blind one', async () => {
    const { bob } = await aliceTalksToBob();
    expect(await call('POST', '/transfers', { kind: 'blind', channelId: 'nope', destination: '1003' })).toMatchObject({ status: 404, json: { code: 'ERR_CHANNEL_NOT_FOUND' } });
    expect((await call('GET', '/transfers/nope')).status).toBe(404);
    expect((await call('POST', '/transfers/nope/cancel')).status).toBe(404);
    h.emu.setEndpoint('carol', { kind: 'no-answer' });
    const first = await call('POST', '/transfers', { kind: 'blind', channelId: bob.id, destination: 'carol' });
    expect(first.status).toBe(202);
    expect(await call('POST', '/transfers', { kind: 'attended', channelId: bob.id, destination: 'dave' })).toMatchObject({ status: 409, json: { code: 'ERR_TRANSFER_IN_PROGRESS' } });
    expect(await call('POST', `/transfers/${first.json.transferId}/complete`)).toMatchObject({ status: 409, json: { code: 'ERR_NOT_ATTENDED' } });
    const lonely = h.emu.phoneCalls({ endpoint: 'dave', exten: '300', callerName: 'Dave' });
    await waitUntil(async () => (await h.service.registry.store.getChannel(lonely.id)) !== undefined, 'the service to see dave');
    expect(await call('POST', '/transfers', { kind: 'blind', channelId: lonely.id, destination: '1003' })).toMatchObject({ status: 409, json: { code: 'ERR_CHANNEL_NOT_BRIDGED' } });
  });

  it('is behind the token; /openapi.json is open and describes the transfer API', async () => {
    const { bob } = await aliceTalksToBob();
    expect((await call('POST', '/transfers', { kind: 'blind', channelId: bob.id, destination: '1003' }, null)).status).toBe(401);
    expect(originates(h)).toEqual([]);
    const spec = await call('GET', '/openapi.json', undefined, null);
    expect(spec.status).toBe(200);
    expect(spec.json.openapi).toMatch(/^3\./);
    expect(Object.keys(spec.json.paths)).toEqual(expect.arrayContaining(['/transfers', '/transfers/{id}', '/transfers/{id}/complete', '/transfers/{id}/cancel', '/calls']));
    expect(spec.json.paths['/transfers'].post.requestBody.content['application/json'].schema.required).toEqual(['kind', 'channelId', 'destination']);
    expect(spec.json.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
  });
});
