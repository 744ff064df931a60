// REST behaviour of the emulator: Asterisk's status codes and messages, event
// order of the state changes, originate outcomes, faults and the WebSocket.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { AriEmulator } from './index.js';
import { PASS, USER, ari, connectEvents, sleep, upgradeStatus, type EventClient, type WireEvent } from './test-helpers.js';

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

const idOf = (e: WireEvent): string | undefined => ((e.channel ?? e.peer) as { id?: string } | undefined)?.id;
/** Index after everything emitted so far has arrived (scenario calls emit synchronously, the socket delivers later). */
// Everything emitted so far has arrived on our socket (a quiet period
// alone is not enough on a loaded machine), then a short settle.
const mark = async (): Promise<number> => {
  await emu.waitFor(() => events.events.length >= emu.events.length, 5000);
  await events.settle(20);
  return events.events.length;
};
const typesFor = (id: string, since = 0): string[] =>
  events.events.slice(since).filter((e) => idOf(e) === id && e.type !== 'ChannelVarset' && e.type !== 'ChannelDialplan').map((e) => e.type);

function answeredCall(endpoint = 'alice', exten = '100'): string {
  const id = emu.phoneCalls({ endpoint, exten }).id;
  emu.answer(id);
  return id;
}

describe('authentication and routing (res_ari.c)', () => {
  it('401 "Authentication required" without or with wrong credentials, with a Basic challenge', async () => {
    for (const opts of [{ auth: false }, { authHeader: `Basic ${Buffer.from('asterisk:nope').toString('base64')}` }]) {
      const res = await ari(emu, 'GET', '/channels', opts);
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ message: 'Authentication required' });
      expect(res.headers.get('www-authenticate')).toBe('Basic realm="Asterisk REST Interface"');
    }
  });

  it('accepts ?api_key=user:pass', async () => {
    const res = await ari(emu, 'GET', '/channels', { auth: false, query: { api_key: `${USER}:${PASS}` } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual([]);
  });

  it('404 "Resource not found", 405 "Invalid method" with Allow, 501 for ARI resources not emulated', async () => {
    expect(await ari(emu, 'GET', '/nothing/here')).toMatchObject({ status: 404, body: { message: 'Resource not found' } });
    const wrong = await ari(emu, 'PUT', '/channels');
    expect(wrong).toMatchObject({ status: 405, body: { message: 'Invalid method' } });
    expect(wrong.headers.get('allow')).toBe('OPTIONS,GET,POST');
    expect((await ari(emu, 'POST', '/channels/x/hold')).status).toBe(501);
    expect(await ari(emu, 'GET', '/channels/')).toMatchObject({
      status: 404,
      body: { message: 'ARI URLs do not end with a slash. Try /ari/channels' },
    });
  });

  it('GET /asterisk/info and /asterisk/ping', async () => {
    const info = await ari(emu, 'GET', '/asterisk/info');
    expect(Object.keys(info.body as object)).toEqual(['build', 'system', 'config', 'status']);
    const ping = await ari(emu, 'GET', '/asterisk/ping');
    expect(ping.body).toMatchObject({ ping: 'pong' });
  });

  it('records every request with the path below /ari', async () => {
    const id = answeredCall();
    await ari(emu, 'GET', `/channels/${id}/variable`, { query: { variable: 'CHANNEL(name)' } });
    await ari(emu, 'GET', '/channels/missing');
    expect(emu.requests).toEqual([
      { method: 'GET', path: `/channels/${id}/variable`, query: { variable: 'CHANNEL(name)' }, status: 200 },
      { method: 'GET', path: '/channels/missing', query: {}, status: 404 },
    ]);
  });
});

describe('channels', () => {
  it('404 "Channel not found" / 409 "Channel not in Stasis application"', async () => {
    expect(await ari(emu, 'GET', '/channels/nope')).toMatchObject({ status: 404, body: { message: 'Channel not found' } });
    expect(await ari(emu, 'POST', '/channels/nope/answer')).toMatchObject({ status: 404, body: { message: 'Channel not found' } });
    expect(await ari(emu, 'DELETE', '/channels/nope')).toMatchObject({ status: 404, body: { message: 'Channel not found' } });
    emu.setEndpoint('dave', { kind: 'no-answer' });
    const dave = emu.originate({ endpoint: 'PJSIP/dave', app: emu.app });
    expect(await ari(emu, 'POST', `/channels/${dave.id}/answer`)).toMatchObject({
      status: 409,
      body: { message: 'Channel not in Stasis application' },
    });
    expect(await ari(emu, 'POST', `/channels/${dave.id}/moh`)).toMatchObject({ status: 409 });
  });

  it('answer: 204 and ChannelStateChange Up', async () => {
    const id = emu.phoneCalls({ endpoint: 'alice', exten: '100' }).id;
    expect((await ari(emu, 'POST', `/channels/${id}/answer`)).status).toBe(204);
    const change = await events.waitFor('ChannelStateChange', (e) => idOf(e) === id);
    expect((change.channel as { state: string }).state).toBe('Up');
    expect(emu.channel(id)?.state).toBe('Up');
  });

  it('inbound call: ChannelCreated (Ring, empty protocol_id), StasisStart (Ring, Call-ID, args)', async () => {
    const ch = emu.phoneCalls({ endpoint: 'alice', exten: '100', args: ['inbound'] });
    const created = await events.waitFor('ChannelCreated', (e) => idOf(e) === ch.id);
    const start = await events.waitFor('StasisStart', (e) => idOf(e) === ch.id);
    expect(created.channel).toMatchObject({ state: 'Ring', protocol_id: '', dialplan: { exten: '100', app_name: '' } });
    expect(start).toMatchObject({
      args: ['inbound'],
      channel: {
        state: 'Ring',
        protocol_id: emu.dialogOf(ch.id).callId,
        name: expect.stringMatching(/^PJSIP\/alice-[0-9a-f]{8}$/),
        id: expect.stringMatching(/^emu-\d+\.\d+$/),
        dialplan: { context: 'from-phones', exten: '100', app_name: 'Stasis', app_data: 'ari-transfer,inbound' },
      },
    });
  });

  it('DELETE: HangupRequest 32 soft, LeftBridge, StasisEnd, HangupRequest 16, Destroyed 16 (inbound)', async () => {
    const id = answeredCall();
    emu.createBridge({ id: 'b1' });
    emu.addToBridge('b1', id);
    const since = await mark();
    expect((await ari(emu, 'DELETE', `/channels/${id}`, { query: { reason: 'normal' } })).status).toBe(204);
    await events.waitFor('ChannelDestroyed', (e) => idOf(e) === id);
    expect(typesFor(id, since)).toEqual([
      'ChannelHangupRequest',
      'ChannelLeftBridge',
      'StasisEnd',
      'ChannelHangupRequest',
      'ChannelDestroyed',
    ]);
    const [first, , , second, destroyed] = events.events.slice(since).filter((e) => idOf(e) === id && e.type !== 'ChannelVarset');
    expect(first).toMatchObject({ cause: 32, soft: true });
    expect(second).toMatchObject({ cause: 16, soft: true });
    expect(destroyed).toMatchObject({ cause: 16, cause_txt: 'Normal Clearing' });
    expect(emu.hangups).toEqual([{ channelId: id, name: expect.any(String), cause: 16, by: 'ari' }]);
    expect(emu.bridge('b1')?.channels).toEqual([]);
  });

  it('DELETE reasons map to causes; bad reasons are 400', async () => {
    const id = answeredCall();
    expect(await ari(emu, 'DELETE', `/channels/${id}`, { query: { reason: 'nonsense' } })).toMatchObject({
      status: 400,
      body: { message: 'Invalid reason for hangup reason provided' },
    });
    expect(await ari(emu, 'DELETE', `/channels/${id}`, { query: { reason: 'busy', reason_code: '17' } })).toMatchObject({
      status: 400,
      body: { message: "The reason and reason_code can't both be specified" },
    });
    expect((await ari(emu, 'DELETE', `/channels/${id}`, { query: { reason: 'busy' } })).status).toBe(204);
    const destroyed = await events.waitFor('ChannelDestroyed', (e) => idOf(e) === id);
    expect(destroyed).toMatchObject({ cause: 17, cause_txt: 'User busy' });
  });

  it("the phone's BYE: HangupRequest without cause/soft, then as a hangup (attended 7.289)", async () => {
    const id = answeredCall();
    emu.createBridge({ id: 'b1' });
    emu.addToBridge('b1', id);
    const since = await mark();
    emu.phoneHangsUp(id);
    await events.waitFor('ChannelDestroyed', (e) => idOf(e) === id);
    const first = events.events.slice(since).find((e) => e.type === 'ChannelHangupRequest')!;
    expect(Object.keys(first)).toEqual(['type', 'timestamp', 'channel', 'asterisk_id', 'application']);
    expect(typesFor(id, since)).toEqual(['ChannelHangupRequest', 'ChannelLeftBridge', 'StasisEnd', 'ChannelHangupRequest', 'ChannelDestroyed']);
    expect(emu.hangups.at(-1)).toMatchObject({ channelId: id, cause: 16, by: 'phone' });
  });

  it('variables: Call-ID and tags, CHANNEL(name), errors as Asterisk words them', async () => {
    const id = answeredCall();
    const d = emu.dialogOf(id);
    const get = (variable?: string, ch = id) =>
      ari(emu, 'GET', `/channels/${ch}/variable`, { query: variable === undefined ? {} : { variable } });
    expect((await get('CHANNEL(pjsip,call-id)')).body).toEqual({ value: d.callId });
    expect((await get('CHANNEL(pjsip,local_tag)')).body).toEqual({ value: d.localTag });
    expect((await get('CHANNEL(pjsip,remote_tag)')).body).toEqual({ value: d.remoteTag });
    expect((await get('CHANNEL(name)')).body).toEqual({ value: emu.channel(id)?.name });
    expect(await get('PJSIP_TRANSFER_HANDLING()')).toMatchObject({ status: 500, body: { message: 'Unable to read provided function' } });
    expect(await get('NO_SUCH_VAR')).toMatchObject({ status: 404, body: { message: 'Provided variable was not found' } });
    expect(await get(undefined)).toMatchObject({ status: 400, body: { message: 'Variable name is required' } });
    expect(await get('X', 'gone')).toMatchObject({ status: 404, body: { message: 'Provided channel was not found' } });
    expect((await ari(emu, 'POST', `/channels/${id}/variable`, { query: { variable: 'FOO', value: 'bar' } })).status).toBe(204);
    expect((await get('FOO')).body).toEqual({ value: 'bar' });
  });

  it('ring and music on hold are visible on the channel', async () => {
    const id = answeredCall();
    expect((await ari(emu, 'POST', `/channels/${id}/moh`, { query: { mohClass: 'jazz' } })).status).toBe(204);
    expect(emu.channel(id)).toMatchObject({ mohPlaying: true, mohClass: 'jazz' });
    expect((await ari(emu, 'DELETE', `/channels/${id}/moh`)).status).toBe(204);
    expect(emu.channel(id)?.mohPlaying).toBe(false);
    expect((await ari(emu, 'POST', `/channels/${id}/ring`)).status).toBe(204);
    expect(emu.channel(id)?.ringing).toBe(true);
    expect((await ari(emu, 'DELETE', `/channels/${id}/ring`)).status).toBe(204);
    expect(emu.channel(id)?.ringing).toBe(false);
  });

  it('hold and unhold from the phone (hold trace): musicclass = moh_suggest, Asterisk plays MOH to the bridged peer', async () => {
    const id = answeredCall();
    const peer = answeredCall();
    emu.createBridge({ id: 'hb' });
    emu.addToBridge('hb', id);
    emu.addToBridge('hb', peer);
    emu.phoneHolds(id);
    const hold = await events.waitFor('ChannelHold', (e) => idOf(e) === id);
    expect(Object.keys(hold)).toEqual(['type', 'timestamp', 'musicclass', 'channel', 'asterisk_id', 'application']);
    expect(hold.musicclass).toBe('default');
    expect(emu.channel(id)).toMatchObject({ onHold: true, mohPlaying: false });
    expect(emu.channel(peer)).toMatchObject({ mohPlaying: true, mohClass: 'default', mohBy: 'hold' });
    // The app may start its own class over it; the resume stops whatever plays.
    expect((await ari(emu, 'POST', `/channels/${peer}/moh`, { query: { mohClass: 'jazz' } })).status).toBe(204);
    expect(emu.channel(peer)).toMatchObject({ mohPlaying: true, mohClass: 'jazz', mohBy: 'ari' });
    emu.phoneUnholds(id);
    const unhold = await events.waitFor('ChannelUnhold', (e) => idOf(e) === id);
    expect(Object.keys(unhold)).toEqual(['type', 'timestamp', 'channel', 'asterisk_id', 'application']);
    expect(emu.channel(id)?.onHold).toBe(false);
    expect(emu.channel(peer)?.mohPlaying).toBe(false);
    expect((await ari(emu, 'DELETE', `/channels/${peer}/moh`)).status).toBe(204);
  });
});

describe('originate', () => {
  it('200 with the Down snapshot; ChannelCreated, Ringing, Up, StasisStart with appArgs', async () => {
    const res = await ari(emu, 'POST', '/channels', {
      query: { endpoint: 'PJSIP/carol', app: emu.app, appArgs: 'transfer-target,carol', callerId: 'Alice <alice>', channelId: 'leg-1' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: 'leg-1',
      state: 'Down',
      caller: { name: 'Alice', number: 'alice' },
      connected: { name: 'Alice', number: 'alice' },
      dialplan: { exten: 's', priority: 1, app_name: 'AppDial2', app_data: '(Outgoing Line)' },
    });
    expect((res.body as { protocol_id: string }).protocol_id).toBe(emu.dialogOf('leg-1').callId);
    const start = await events.waitFor('StasisStart', (e) => idOf(e) === 'leg-1');
    expect(start).toMatchObject({ args: ['transfer-target', 'carol'], channel: { state: 'Up', dialplan: { app_data: 'ari-transfer,transfer-target,carol' } } });
    expect(typesFor('leg-1')).toEqual(['ChannelCreated', 'Dial', 'ChannelStateChange', 'Dial', 'ChannelStateChange', 'Dial', 'StasisStart']);
    const created = events.events.find((e) => e.type === 'ChannelCreated' && idOf(e) === 'leg-1')!;
    expect(created.channel).toMatchObject({ state: 'Down', protocol_id: '' });
    const states = events.events.filter((e) => e.type === 'ChannelStateChange' && idOf(e) === 'leg-1');
    expect(states.map((e) => (e.channel as { state: string }).state)).toEqual(['Ringing', 'Up']);
  });

  it('afterMs 0: the StasisStart is emitted before the 200 response, which still shows Down', async () => {
    emu.setEndpoint('fast', { kind: 'answer', afterMs: 0 });
    const res = await ari(emu, 'POST', '/channels', { query: { endpoint: 'PJSIP/fast', app: emu.app } });
    const id = (res.body as { id: string; state: string }).id;
    expect((res.body as { state: string }).state).toBe('Down');
    expect(emu.events.some((e) => e.type === 'StasisStart' && idOf(e as WireEvent) === id)).toBe(true);
  });

  it('Local channel whose dialplan Dial() finds the target busy: both halves go with cause 17', async () => {
    emu.setEndpoint('1002@transfers', { kind: 'busy' });
    const one = emu.originate({ endpoint: 'Local/1002@transfers', app: emu.app });
    await emu.waitFor(() => emu.channels().length === 0);
    expect(emu.hangups.map((h) => [h.name.slice(-2), h.cause])).toEqual([
      [';2', 17],
      [';1', 17],
    ]);
    expect(emu.hangups[1]?.channelId).toBe(one.id);
  });

  it('errors: 400 for missing/invalid endpoint or app, 409 for an id in use, 500 for an unreachable endpoint', async () => {
    const post = (query: Record<string, string>) => ari(emu, 'POST', '/channels', { query });
    expect(await post({ app: emu.app })).toMatchObject({ status: 400, body: { message: 'Endpoint must be specified' } });
    expect(await post({ endpoint: 'carol', app: emu.app })).toMatchObject({ status: 400, body: { message: 'Invalid endpoint specified' } });
    expect(await post({ endpoint: 'PJSIP/carol' })).toMatchObject({
      status: 400,
      body: { message: 'Application or extension must be specified' },
    });
    const id = answeredCall();
    expect(await post({ endpoint: 'PJSIP/carol', app: emu.app, channelId: id })).toMatchObject({
      status: 409,
      body: { message: 'Channel with given unique ID already exists' },
    });
    expect(await ari(emu, 'POST', `/channels/${id}`, { query: { endpoint: 'PJSIP/carol', app: emu.app } })).toMatchObject({ status: 409 });
    emu.setEndpoint('ghost', { kind: 'unreachable' });
    const before = await mark();
    expect(await post({ endpoint: 'PJSIP/ghost', app: emu.app })).toMatchObject({ status: 500, body: { error: 'Allocation failed' } });
    await sleep(20);
    expect(events.events.length).toBe(before);
  });

  it('busy and reject: ChannelHangupRequest with the cause and ChannelDestroyed, never StasisStart', async () => {
    emu.setEndpoint('busy', { kind: 'busy' });
    emu.setEndpoint('rej', { kind: 'reject', afterMs: 10 });
    const a = emu.originate({ endpoint: 'PJSIP/busy', app: emu.app });
    const b = emu.originate({ endpoint: 'PJSIP/rej', app: emu.app });
    const da = await events.waitFor('ChannelDestroyed', (e) => idOf(e) === a.id);
    const db = await events.waitFor('ChannelDestroyed', (e) => idOf(e) === b.id);
    expect(da).toMatchObject({ cause: 17, cause_txt: 'User busy' });
    expect(db).toMatchObject({ cause: 21, cause_txt: 'Call Rejected' });
    expect(events.events.find((e) => e.type === 'ChannelHangupRequest' && idOf(e) === a.id)).toMatchObject({ cause: 17 });
    expect(typesFor(a.id).filter((t) => t !== 'Dial')).toEqual(['ChannelCreated', 'ChannelStateChange', 'ChannelHangupRequest', 'ChannelDestroyed']);
    expect(emu.hangups.map((h) => [h.channelId, h.cause, h.by])).toEqual([
      [a.id, 17, 'phone'],
      [b.id, 21, 'phone'],
    ]);
  });

  it('no answer: destroyed with cause 19 at the originate timeout; a hangup before that is a normal ARI hangup', async () => {
    emu.setEndpoint('slow', { kind: 'no-answer' });
    const a = emu.originate({ endpoint: 'PJSIP/slow', app: emu.app, timeout: 1 });
    const b = emu.originate({ endpoint: 'PJSIP/slow', app: emu.app });
    await events.waitFor('ChannelStateChange', (e) => idOf(e) === b.id);
    expect(emu.channel(b.id)?.state).toBe('Ringing');
    expect((await ari(emu, 'DELETE', `/channels/${b.id}`)).status).toBe(204);
    await events.waitFor('ChannelDestroyed', (e) => idOf(e) === b.id);
    expect(typesFor(b.id).filter((t) => t !== 'Dial')).toEqual(['ChannelCreated', 'ChannelStateChange', 'ChannelHangupRequest', 'ChannelDestroyed']);
    const destroyed = await events.waitFor('ChannelDestroyed', (e) => idOf(e) === a.id, 0, 2500);
    expect(destroyed).toMatchObject({ cause: 19, cause_txt: 'User alerting, no answer' });
    expect(emu.hangups.find((h) => h.channelId === a.id)?.by).toBe('asterisk');
  });

  it('a ringing call can be answered by the test, and variables from the body are set', async () => {
    emu.setEndpoint('slow', { kind: 'no-answer' });
    const res = await ari(emu, 'POST', '/channels', {
      query: { endpoint: 'PJSIP/slow', app: emu.app, appArgs: 'x' },
      body: { variables: { CALLERID_HINT: 'yes' } },
    });
    const id = (res.body as { id: string }).id;
    await events.waitFor('ChannelStateChange', (e) => idOf(e) === id);
    emu.phoneAnswers(id);
    expect(await events.waitFor('StasisStart', (e) => idOf(e) === id)).toMatchObject({ args: ['x'] });
    expect((await ari(emu, 'GET', `/channels/${id}/variable`, { query: { variable: 'CALLERID_HINT' } })).body).toEqual({ value: 'yes' });
    const bad = await ari(emu, 'POST', '/channels', { query: { endpoint: 'PJSIP/x', app: emu.app }, body: { variables: { N: 1 } } });
    expect(bad).toMatchObject({ status: 400, body: { message: "Only string values in the 'variables' object allowed" } });
  });

  it('Local channels: two halves, only ;1 in Stasis, empty protocol_id, CHANNEL(pjsip,...) fails (callid-local)', async () => {
    const res = await ari(emu, 'POST', '/channels', { query: { endpoint: 'Local/echo@internal', app: emu.app, appArgs: 'local-test' } });
    const one = res.body as { id: string; name: string; protocol_id: string };
    expect(one.name).toMatch(/^Local\/echo@internal-[0-9a-f]{8};1$/);
    expect(one.protocol_id).toBe('');
    await events.waitFor('StasisStart', (e) => idOf(e) === one.id);
    const two = emu.channels().find((c) => c.name.endsWith(';2'))!;
    expect(two.inStasis).toBe(false);
    expect(await ari(emu, 'GET', `/channels/${one.id}/variable`, { query: { variable: 'CHANNEL(pjsip,call-id)' } })).toMatchObject({
      status: 500,
      body: { message: 'Unable to read provided function' },
    });
    const since = await mark();
    expect((await ari(emu, 'DELETE', `/channels/${one.id}`)).status).toBe(204);
    await events.waitFor('ChannelDestroyed', (e) => idOf(e) === two.id, since);
    const seq = events.events
      .slice(since)
      .filter((e) => e.type !== 'ChannelVarset')
      .map((e) => `${e.type}${(e.channel as { name: string }).name.slice(-2)}${e.cause !== undefined ? ` ${String(e.cause)}` : ''}`);
    expect(seq).toEqual([
      'ChannelHangupRequest;1 32',
      'StasisEnd;1',
      'ChannelHangupRequest;2 16',
      'ChannelDestroyed;1 16',
      'ChannelHangupRequest;2 16',
      'ChannelDestroyed;2 16',
    ]);
  });
});

describe('bridges', () => {
  it('create: 200 snapshot as in the traces, 409 for an existing id, 404 for unknown bridges', async () => {
    const res = await ari(emu, 'POST', '/bridges/b1', { query: { type: 'mixing', name: 'original-call' } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      id: 'b1',
      technology: 'simple_bridge',
      bridge_type: 'mixing',
      bridge_class: 'stasis',
      creator: 'Stasis',
      name: 'original-call',
      channels: [],
      creationtime: expect.any(String),
      video_mode: 'talker',
    });
    expect(await ari(emu, 'POST', '/bridges/b1')).toMatchObject({ status: 409, body: { message: "Bridge with id 'b1' already exists" } });
    expect(await ari(emu, 'POST', '/bridges', { query: { bridgeId: 'b1' } })).toMatchObject({ status: 409 });
    expect(await ari(emu, 'GET', '/bridges/zz')).toMatchObject({ status: 404, body: { message: 'Bridge not found' } });
    expect(await ari(emu, 'DELETE', '/bridges/zz')).toMatchObject({ status: 404, body: { message: 'Bridge not found' } });
    const anon = await ari(emu, 'POST', '/bridges');
    expect((anon.body as { id: string }).id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('addChannel / removeChannel errors: 404 bridge, 400 missing or unknown channel, 422 not in Stasis / not in this bridge', async () => {
    const id = answeredCall();
    emu.createBridge({ id: 'b1' });
    emu.createBridge({ id: 'b2' });
    const addTo = (bridge: string, channel?: string) =>
      ari(emu, 'POST', `/bridges/${bridge}/addChannel`, { query: channel === undefined ? {} : { channel } });
    expect(await addTo('zz', id)).toMatchObject({ status: 404, body: { message: 'Bridge not found' } });
    expect(await addTo('b1')).toMatchObject({ status: 400, body: { message: 'Missing parameter channel' } });
    expect(await addTo('b1', 'nope')).toMatchObject({ status: 400, body: { message: 'Channel not found' } });
    emu.setEndpoint('slow', { kind: 'no-answer' });
    const ringing = emu.originate({ endpoint: 'PJSIP/slow', app: emu.app }).id;
    expect(await addTo('b1', ringing)).toMatchObject({ status: 422, body: { message: 'Channel not in Stasis application' } });
    emu.addToBridge('b1', id);
    expect(await ari(emu, 'POST', '/bridges/b2/removeChannel', { query: { channel: id } })).toMatchObject({
      status: 422,
      body: { message: 'Channel not in this bridge' },
    });
  });

  it('addChannel moves a bridged channel: ChannelLeftBridge (old) then ChannelEnteredBridge (new), members after the change', async () => {
    const a = answeredCall('alice');
    const b = answeredCall('bob', '200');
    const c = answeredCall('carol', '300');
    emu.createBridge({ id: 'b1' });
    emu.createBridge({ id: 'b2' });
    expect((await ari(emu, 'POST', '/bridges/b1/addChannel', { query: { channel: `${a},${b}` } })).status).toBe(204);
    emu.addToBridge('b2', c);
    const since = await mark();
    expect((await ari(emu, 'POST', '/bridges/b2/addChannel', { query: { channel: a } })).status).toBe(204);
    await events.waitFor('ChannelEnteredBridge', (e) => idOf(e) === a, since);
    const moves = events.events.slice(since).filter((e) => e.type.endsWith('Bridge'));
    expect(moves.map((e) => [e.type, (e.bridge as { id: string }).id, (e.bridge as { channels: string[] }).channels])).toEqual([
      ['ChannelLeftBridge', 'b1', [b]],
      ['ChannelEnteredBridge', 'b2', [c, a]],
    ]);
    expect(emu.channel(a)?.bridgeId).toBe('b2');
  });

  // test/fixtures/traces/connected-line/ and transfer-connected-line/ (Asterisk 22.10.1).
  it('connected line: a join updates both phones with the other\'s caller id unless inhibitConnectedLineUpdates; a channel leaving a bridge of three always does', async () => {
    const a = answeredCall('alice');
    const b = answeredCall('bob', '200');
    const c = answeredCall('carol', '300');
    emu.createBridge({ id: 'b1' });
    expect((await ari(emu, 'POST', '/bridges/b1/addChannel', { query: { channel: `${a},${b}`, inhibitConnectedLineUpdates: 'true' } })).status).toBe(204);
    expect([emu.channel(a)?.connectedLineUpdates, emu.channel(b)?.connectedLineUpdates]).toEqual([[], []]);
    expect((await ari(emu, 'POST', '/bridges/b1/addChannel', { query: { channel: c, inhibitConnectedLineUpdates: 'true' } })).status).toBe(204);
    // bob leaves: alice and carol are two, and each is told the other's caller id.
    expect((await ari(emu, 'POST', '/bridges/b1/removeChannel', { query: { channel: b } })).status).toBe(204);
    expect(emu.channel(a)?.connectedLineUpdates).toEqual([{ name: 'Carol', number: 'carol' }]);
    expect(emu.channel(c)?.connectedLineUpdates).toEqual([{ name: 'Alice', number: 'alice' }]);
    // A plain join into a two-party bridge: both again (bob is told alice; alice, now with bob, bob).
    emu.createBridge({ id: 'b2' });
    expect((await ari(emu, 'POST', '/bridges/b2/addChannel', { query: { channel: `${a},${b}` } })).status).toBe(204);
    expect(emu.channel(b)?.connectedLineUpdates).toEqual([{ name: 'Alice', number: 'alice' }]);
    expect(emu.channel(a)?.connectedLineUpdates).toEqual([{ name: 'Carol', number: 'carol' }, { name: 'Bob', number: 'bob' }]);
  });

  it('connected line: CONNECTEDLINE(all) reaches that channel\'s phone once (and a ChannelConnectedLine), the same value again is dropped, the i option only stores; CALLERID(all) changes the caller id', async () => {
    const a = answeredCall('alice');
    const since = await mark();
    expect((await ari(emu, 'POST', `/channels/${a}/variable`, { query: { variable: 'CONNECTEDLINE(all)', value: '"Carol \\"C\\" (Sales), Inc." <1003>' } })).status).toBe(204);
    const carol = { name: 'Carol "C" (Sales), Inc.', number: '1003' };
    await events.waitFor('ChannelConnectedLine', (e) => idOf(e) === a, since);
    expect(events.events.slice(since).filter((e) => e.type === 'ChannelConnectedLine').map((e) => [idOf(e), (e.channel as { connected: unknown }).connected])).toEqual([[a, carol]]);
    expect(emu.channel(a)).toMatchObject({ connected: carol, connectedLineUpdates: [carol] });
    expect((await ari(emu, 'POST', `/channels/${a}/variable`, { query: { variable: 'CONNECTEDLINE(all)', value: '"Carol \\"C\\" (Sales), Inc." <1003>' } })).status).toBe(204);
    expect((await ari(emu, 'POST', `/channels/${a}/variable`, { query: { variable: 'CONNECTEDLINE(all,i)', value: '<1004>' } })).status).toBe(204);
    expect(emu.channel(a)).toMatchObject({ connected: { name: '', number: '1004' }, connectedLineUpdates: [carol] });
    expect((await ari(emu, 'POST', `/channels/${a}/variable`, { query: { variable: 'CALLERID(all)', value: '<2001>' } })).status).toBe(204);
    expect(emu.channel(a)?.caller).toEqual({ name: '', number: '2001' });
  });

  it('DELETE a bridge with members: ChannelLeftBridge each, then BridgeDestroyed; the channels stay in Stasis', async () => {
    const a = answeredCall('alice');
    const b = answeredCall('bob', '200');
    emu.createBridge({ id: 'b1' });
    emu.addToBridge('b1', a);
    emu.addToBridge('b1', b);
    const since = await mark();
    expect((await ari(emu, 'DELETE', '/bridges/b1')).status).toBe(204);
    await events.waitFor('BridgeDestroyed', () => true, since);
    expect(events.events.slice(since).map((e) => e.type)).toEqual(['ChannelLeftBridge', 'ChannelLeftBridge', 'BridgeDestroyed']);
    expect(emu.channel(a)?.inStasis).toBe(true);
    expect(emu.bridge('b1')).toBeUndefined();
  });

  it('an emptied Stasis bridge stays until deleted', async () => {
    const a = answeredCall();
    emu.createBridge({ id: 'b1' });
    emu.addToBridge('b1', a);
    emu.phoneHangsUp(a);
    expect(emu.bridge('b1')).toMatchObject({ channels: [] });
  });

  it('bridge music on hold: 409 "Bridge isn\'t playing music" when stopping silence', async () => {
    emu.createBridge({ id: 'b1' });
    expect(await ari(emu, 'DELETE', '/bridges/b1/moh')).toMatchObject({ status: 409, body: { message: "Bridge isn't playing music" } });
    expect((await ari(emu, 'POST', '/bridges/b1/moh')).status).toBe(204);
    expect(emu.bridge('b1')?.mohPlaying).toBe(true);
    expect((await ari(emu, 'DELETE', '/bridges/b1/moh')).status).toBe(204);
  });
});

describe('faults and the WebSocket', () => {
  it('failNext: the matching request fails once, without a state change', async () => {
    const a = answeredCall();
    emu.createBridge({ id: 'b1' });
    emu.failNext({ method: 'POST', path: /\/bridges\/[^/]+\/addChannel$/, status: 500 });
    expect(await ari(emu, 'POST', '/bridges/b1/addChannel', { query: { channel: a } })).toMatchObject({
      status: 500,
      body: { message: 'Internal Server Error' },
    });
    expect(emu.bridge('b1')?.channels).toEqual([]);
    expect((await ari(emu, 'POST', '/bridges/b1/addChannel', { query: { channel: a } })).status).toBe(204);
  });

  it('failNext with a query filter and a count', async () => {
    const a = answeredCall('alice');
    const b = answeredCall('bob', '200');
    emu.createBridge({ id: 'b1' });
    emu.failNext({ method: 'POST', path: /addChannel$/, query: { channel: b }, status: 503, message: 'busy', times: 2 });
    expect((await ari(emu, 'POST', '/bridges/b1/addChannel', { query: { channel: a } })).status).toBe(204);
    expect(await ari(emu, 'POST', '/bridges/b1/addChannel', { query: { channel: b } })).toMatchObject({ status: 503, body: { message: 'busy' } });
    expect((await ari(emu, 'POST', '/bridges/b1/addChannel', { query: { channel: b } })).status).toBe(503);
    expect((await ari(emu, 'POST', '/bridges/b1/addChannel', { query: { channel: b } })).status).toBe(204);
  });

  it('upgrade refusals: 401 without credentials, 503 while refusing, 400 without app', async () => {
    const ws = `${emu.url.replace('http', 'ws')}/ari/events`;
    const auth = { Authorization: `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}` };
    expect(await upgradeStatus(`${ws}?app=x`)).toBe(401);
    expect(await upgradeStatus(`${ws}?app=x`, auth)).toBe(101);
    expect(await upgradeStatus(`${ws}`, auth)).toBe(400);
    emu.refuseWebSockets(true);
    expect(await upgradeStatus(`${ws}?app=x`, auth)).toBe(503);
    emu.refuseWebSockets(false);
    expect(await upgradeStatus(`${ws}?app=x&api_key=${USER}:${PASS}`)).toBe(101);
  });

  it('dropWebSockets: the client sees an abnormal close (1006), events meanwhile are lost, a new socket gets new events', async () => {
    const raw = new WebSocket(`${emu.url.replace('http', 'ws')}/ari/events?app=observer`, {
      headers: { Authorization: `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}` },
    });
    await new Promise((resolve) => raw.once('open', resolve));
    await emu.waitFor(() => emu.connectedSockets === 2);
    const code = new Promise<number>((resolve) => raw.once('close', (c: number) => resolve(c)));
    emu.dropWebSockets();
    expect(await code).toBe(1006);
    expect(emu.connectedSockets).toBe(0);
    const before = await mark();
    emu.createBridge({ id: 'lost' });
    await sleep(20);
    expect(events.events.length).toBe(before);
    expect(emu.events.at(-1)).toMatchObject({ type: 'BridgeCreated' });

    const again = await connectEvents(emu);
    emu.createBridge({ id: 'seen' });
    expect(await again.waitFor('BridgeCreated')).toMatchObject({ bridge: { id: 'seen' } });
    await again.close();
  });

  it('while no socket serves the app, Stasis() fails and a new call is hung up', async () => {
    await events.close();
    await emu.waitFor(() => emu.connectedSockets === 0);
    const ch = emu.phoneCalls({ endpoint: 'alice', exten: '100' });
    expect(emu.channel(ch.id)).toBeUndefined();
    expect(emu.hangups).toEqual([{ channelId: ch.id, name: ch.name, cause: 16, by: 'asterisk' }]);
    expect(emu.events.some((e) => e.type === 'StasisStart')).toBe(false);
  });

  it('subscribeAll=false: only what concerns the app, from StasisStart on', async () => {
    const own = await connectEvents(emu, { app: 'other', subscribeAll: false });
    const ch = emu.phoneCalls({ endpoint: 'alice', exten: '100', app: 'other' });
    await own.waitFor('StasisStart');
    emu.phoneCalls({ endpoint: 'bob', exten: '200' }); // another app's call
    emu.createBridge({ id: 'b-other' });
    emu.addToBridge('b-other', ch.id);
    await own.waitFor('ChannelEnteredBridge');
    await own.settle();
    expect(own.events.map((e) => e.type).filter((t) => t !== 'ChannelVarset')).toEqual(['StasisStart', 'ChannelEnteredBridge']);
    expect(own.events.every((e) => e.application === 'other')).toBe(true);
    await own.close();
  });

  it('a second socket for the same app replaces the first (ApplicationReplaced)', async () => {
    const second = await connectEvents(emu);
    await events.waitFor('ApplicationReplaced');
    emu.createBridge({ id: 'b1' });
    await second.waitFor('BridgeCreated');
    await sleep(20);
    expect(events.events.some((e) => e.type === 'BridgeCreated')).toBe(false);
    await second.close();
  });
});
