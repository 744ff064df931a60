// The transferer's phone hangs up (BYE) during a blind transfer: right after
// the 202 (before any transfer_progress), or after the first NOTIFY (after
// channel_progress). Shows the events (a second ChannelTransfer?), the NOTIFYs
// the phone still gets, and what transfer_progress answers afterwards.

import { channelIdOf } from '../ari-log.js';
import { PORTS } from '../asterisk.js';
import type { Scenario, ScenarioContext } from '../context.js';

async function transfererHangsUp(ctx: ScenarioContext, afterProgress: boolean): Promise<void> {
  await ctx.connectMain();
  const bob = ctx.phone({
    label: '1002',
    scenario: afterProgress ? 'uas_referer_bye_after_trying.xml' : 'uas_referer_bye.xml',
    phone: '1002',
    port: PORTS.phone(2),
    keys: { refer_to: '1003', refer_params: '', refer_extra_header: 'X-Recorder: bye' },
  });
  await ctx.sleep(300);
  const alicePhone = ctx.phone({ label: '1001', scenario: 'uac_call_wait_bye.xml', phone: '1001', port: PORTS.phone(1), call: '1002' });

  const alice = await ctx.answerInbound('PJSIP/1001');
  await ctx.ari.call('POST', '/bridges/call-bridge', { type: 'mixing', name: 'call' });
  await ctx.ari.call('POST', '/bridges/call-bridge/addChannel', { channel: alice });
  const transferer = await ctx.originateAnswered('rec-transferer', 'PJSIP/1002', { appArgs: 'callee', callerId: '1001' });
  await ctx.ari.call('POST', '/bridges/call-bridge/addChannel', { channel: transferer });

  const first = await ctx.waitEvent('ChannelTransfer', undefined, 0, 15_000);
  ctx.note(`first ChannelTransfer: state ${'state' in first ? JSON.stringify(first.state) : '(absent)'}`);
  if (afterProgress) {
    const r = await ctx.ari.call('POST', `/channels/${transferer}/transfer_progress`, { states: 'channel_progress' });
    ctx.note(`transfer_progress channel_progress -> ${r.status}`);
  }
  const destroyed = await ctx.waitEvent('ChannelDestroyed', transferer, 0, 15_000);
  ctx.note(`transferer ChannelDestroyed cause=${String(destroyed.cause)}`);
  await ctx.sleep(500);
  const transfers = ctx.main.received.filter((e) => e.type === 'ChannelTransfer');
  ctx.note(`ChannelTransfer events: ${transfers.map((e) => ('state' in e ? String(e.state) : '(no state)')).join(', ')}`);
  const order = ctx.main.received
    .filter((e) => channelIdOf(e) === transferer || e.type === 'ChannelTransfer')
    .filter((e) => ['ChannelTransfer', 'ChannelHangupRequest', 'ChannelLeftBridge', 'StasisEnd', 'ChannelDestroyed'].includes(e.type))
    .map((e) => e.type);
  ctx.note(`transferer events in order: ${order.join(' → ')}`);
  const late = await ctx.ari.call('POST', `/channels/${transferer}/transfer_progress`, { states: 'channel_answered' });
  ctx.note(`transfer_progress channel_answered after the hangup -> ${late.status} ${JSON.stringify(late.body)}`);
  await bob.done(10_000);
  await ctx.ari.call('DELETE', `/channels/${alice}`);
  await ctx.ari.call('DELETE', '/bridges/call-bridge');
  await alicePhone.done(10_000);
}

export const transfererByeBeforeProgress: Scenario = {
  name: 'blind-bye-before-progress',
  about: 'blind REFER; the transferer phone sends BYE right after the 202, before any transfer_progress',
  run: (ctx) => transfererHangsUp(ctx, false),
};

export const transfererByeAfterProgress: Scenario = {
  name: 'blind-bye-after-progress',
  about: 'blind REFER; the app sends channel_progress; the phone answers the NOTIFY 100 and sends BYE',
  run: (ctx) => transfererHangsUp(ctx, true),
};
