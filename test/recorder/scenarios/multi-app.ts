// Several Stasis applications on one Asterisk: which socket gets which event.
// Sockets: `ari-transfer` (subscribeAll=true, the main log), `other-app`
// (subscribeAll=true) and `idle-app` (subscribeAll=false, no channel of its own).
// A phone calls 8001 (dialplan: Stasis(other-app)), another calls 1003
// (Stasis(ari-transfer)); then a call is originated into other-app. Each is
// answered and hung up over REST.

import { channelIdOf, type EventSocket } from '../ari-log.js';
import { OTHER_APP, PORTS } from '../asterisk.js';
import type { Scenario, ScenarioContext } from '../context.js';

function summary(ctx: ScenarioContext, socket: EventSocket, channelId: string, what: string): void {
  const types = socket.received.filter((e) => channelIdOf(e) === channelId).map((e) => `${e.type}(${String(e.application)})`);
  ctx.note(`socket ${socket.label} for ${what}: ${types.join(', ') || 'nothing'}`);
}

export const multiApp: Scenario = {
  name: 'multi-app',
  about: 'StasisStart and channel events with subscribeAll when several applications exist',
  async run(ctx) {
    await ctx.connectMain();
    const other = await ctx.ari.connect(OTHER_APP, true, 'other-app');
    const idle = await ctx.ari.connect('idle-app', false, 'idle-app');
    const sockets = [ctx.main, other, idle];

    // 1. A call into other-app.
    const p1 = ctx.phone({ label: '1001', scenario: 'uac_call_wait_bye.xml', phone: '1001', port: PORTS.phone(1), call: '8001' });
    const s1 = await other.waitFor((e) => e.type === 'StasisStart', 'StasisStart on other-app');
    const c1 = channelIdOf(s1)!;
    await ctx.ari.call('POST', `/channels/${c1}/answer`);
    await ctx.sleep(500);
    await ctx.ari.call('DELETE', `/channels/${c1}`);
    await other.waitFor((e) => e.type === 'ChannelDestroyed' && channelIdOf(e) === c1, 'ChannelDestroyed on other-app');
    await p1.done(10_000);
    await ctx.sleep(300);
    for (const s of sockets) summary(ctx, s, c1, 'a phone call into other-app');

    // 2. A call into ari-transfer.
    const p2 = ctx.phone({ label: '1002', scenario: 'uac_call_wait_bye.xml', phone: '1002', port: PORTS.phone(2), call: '1003' });
    const c2 = await ctx.answerInbound('PJSIP/1002');
    await ctx.sleep(500);
    await ctx.ari.call('DELETE', `/channels/${c2}`);
    await ctx.waitEvent('ChannelDestroyed', c2);
    await p2.done(10_000);
    await ctx.sleep(300);
    for (const s of sockets) summary(ctx, s, c2, 'a phone call into ari-transfer');

    // 3. A call originated into other-app.
    const p3 = ctx.phone({ label: '1003', scenario: 'uas_answer.xml', phone: '1003', port: PORTS.phone(3) });
    await ctx.sleep(300);
    const since = other.received.length;
    const r = await ctx.ari.call('POST', '/channels/rec-into-other', { endpoint: 'PJSIP/1003', app: OTHER_APP, appArgs: 'x', timeout: 20 });
    ctx.note(`originate into other-app -> ${r.status}`);
    await other.waitFor((e) => e.type === 'StasisStart' && channelIdOf(e) === 'rec-into-other', 'StasisStart of the originated call', 10_000, since);
    await ctx.sleep(300);
    await ctx.ari.call('DELETE', '/channels/rec-into-other');
    await other.waitFor((e) => e.type === 'ChannelDestroyed' && channelIdOf(e) === 'rec-into-other', 'its ChannelDestroyed');
    await p3.done(10_000);
    await ctx.sleep(300);
    for (const s of sockets) summary(ctx, s, 'rec-into-other', 'a call originated into other-app');

    // 4. A blind REFER on a call of other-app: who hears the ChannelTransfer?
    const referer = ctx.phone({
      label: '1002-referer',
      scenario: 'uas_blind_referer.xml',
      phone: '1002',
      port: PORTS.phone(2),
      keys: { refer_to: '1003', refer_params: '', refer_extra_header: 'X-Recorder: multi-app' },
    });
    await ctx.sleep(300);
    const p4 = ctx.phone({ label: '1004', scenario: 'uac_call_wait_bye.xml', phone: '1004', port: PORTS.phone(4), call: '8001' });
    const s4 = await other.waitFor((e) => e.type === 'StasisStart' && (e.channel as { name: string }).name.startsWith('PJSIP/1004'), 'StasisStart of 1004');
    const c4 = channelIdOf(s4)!;
    await ctx.ari.call('POST', `/channels/${c4}/answer`);
    await ctx.ari.call('POST', '/bridges/other-bridge', { type: 'mixing', name: 'other' });
    await ctx.ari.call('POST', '/bridges/other-bridge/addChannel', { channel: c4 });
    const since4 = other.received.length;
    await ctx.ari.call('POST', '/channels/rec-other-referer', { endpoint: 'PJSIP/1002', app: OTHER_APP, appArgs: 'callee', timeout: 20 });
    await other.waitFor((e) => e.type === 'StasisStart' && channelIdOf(e) === 'rec-other-referer', 'StasisStart of the referer', 10_000, since4);
    await ctx.ari.call('POST', '/bridges/other-bridge/addChannel', { channel: 'rec-other-referer' });
    await other.waitFor((e) => e.type === 'ChannelTransfer', 'ChannelTransfer on other-app', 15_000);
    await ctx.sleep(300);
    for (const s of sockets) {
      const n = s.received.filter((e) => e.type === 'ChannelTransfer').length;
      ctx.note(`socket ${s.label}: ${n} ChannelTransfer event(s) for a REFER on a channel of other-app`);
    }
    const r4 = await ctx.ari.call('POST', '/channels/rec-other-referer/transfer_progress', { states: 'channel_declined' });
    ctx.note(`transfer_progress from any ARI user on other-app's channel -> ${r4.status}`);
    await ctx.sleep(300);
    await ctx.ari.call('DELETE', '/channels/rec-other-referer');
    await ctx.ari.call('DELETE', `/channels/${c4}`);
    await ctx.ari.call('DELETE', '/bridges/other-bridge');
    await referer.done(10_000);
    await p4.done(10_000);
  },
};
