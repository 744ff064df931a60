// Hold and resume by re-INVITE (a=sendonly, then a=sendrecv) on a call the
// application bridged: which events come (ChannelHold/ChannelUnhold, their
// musicclass), and who plays music to the other party. RTP sent by Asterisk to
// each phone's audio port is counted, and Asterisk's console shows MOH lines.
// `hold-app-moh` also does what ari-transfer does (POST/DELETE
// /channels/{peer}/moh on ChannelHold/ChannelUnhold) to see how the two mix.

import { channelIdOf } from '../ari-log.js';
import { PORTS } from '../asterisk.js';
import type { Scenario, ScenarioContext } from '../context.js';

const HOLDER_RTP = 25161;
const PEER_RTP = 25162;

async function holdScenario(ctx: ScenarioContext, appMoh: boolean): Promise<void> {
  await ctx.connectMain();
  const holderRtp = await ctx.rtpCounter(HOLDER_RTP);
  const peerRtp = await ctx.rtpCounter(PEER_RTP);
  const peerPhone = ctx.phone({
    label: '1002',
    scenario: 'uas_answer_rtp.xml',
    phone: '1002',
    port: PORTS.phone(2),
    keys: { rtp_port: String(PEER_RTP) },
  });
  await ctx.sleep(300);
  const holderPhone = ctx.phone({
    label: '1001',
    scenario: 'uac_hold.xml',
    phone: '1001',
    port: PORTS.phone(1),
    call: '1002',
    keys: { rtp_port: String(HOLDER_RTP) },
  });

  const holder = await ctx.answerInbound('PJSIP/1001');
  await ctx.ari.call('POST', '/bridges/hold-bridge', { type: 'mixing', name: 'call' });
  await ctx.ari.call('POST', '/bridges/hold-bridge/addChannel', { channel: holder });
  const peer = await ctx.originateAnswered('rec-peer', 'PJSIP/1002', { appArgs: 'callee', callerId: '1001' });
  await ctx.ari.call('POST', '/bridges/hold-bridge/addChannel', { channel: peer });
  await ctx.sleep(300);
  await ctx.ari.call('GET', '/bridges/hold-bridge');

  const hold = await ctx.waitEvent('ChannelHold', undefined, 0, 15_000);
  const tHold = ctx.now();
  ctx.note(`ChannelHold on ${channelIdOf(hold) === holder ? 'the holding phone' : 'the OTHER party'}; keys: ${Object.keys(hold).join(',')}; musicclass=${JSON.stringify(hold.musicclass)}`);
  if (appMoh) await ctx.ari.call('POST', `/channels/${peer}/moh`, { mohClass: 'default' });
  await ctx.sleep(1000);
  await ctx.ari.call('GET', '/bridges/hold-bridge');
  await ctx.ari.call('GET', `/channels/${peer}`);

  const unhold = await ctx.waitEvent('ChannelUnhold', undefined, 0, 15_000);
  const tUnhold = ctx.now();
  ctx.note(`ChannelUnhold keys: ${Object.keys(unhold).join(',')}`);
  if (appMoh) await ctx.ari.call('DELETE', `/channels/${peer}/moh`);
  await ctx.sleep(1000);
  const tAfter = ctx.now();
  await ctx.ari.call('GET', '/bridges/hold-bridge');

  const rate = (n: number, ms: number) => `${n} packets in ${(ms / 1000).toFixed(1)} s`;
  ctx.note(`RTP to the OTHER party (1002) while held: ${rate(peerRtp.between(tHold, tUnhold), tUnhold - tHold)}; before hold: ${peerRtp.between(0, tHold)}; after resume: ${rate(peerRtp.between(tUnhold + 200, tAfter), tAfter - tUnhold - 200)}`);
  ctx.note(`RTP to the holding phone (1001) while held: ${rate(holderRtp.between(tHold, tUnhold), tUnhold - tHold)}; before hold: ${holderRtp.between(0, tHold)}`);
  const moh = ctx.asterisk
    .consoleText()
    .split('\n')
    .filter((l) => /music on hold/i.test(l))
    .map((l) => l.replace(/\x1b\[[0-9;]*m/g, '').trim());
  ctx.note(`Asterisk console MOH lines: ${moh.length ? moh.join(' | ') : 'none'}`);

  await ctx.waitEvent('ChannelDestroyed', holder, 0, 15_000);
  await ctx.ari.call('DELETE', `/channels/${peer}`);
  await ctx.ari.call('DELETE', '/bridges/hold-bridge');
  await holderPhone.done(10_000);
  await peerPhone.done(10_000);
}

export const hold: Scenario = {
  name: 'hold',
  about: 'a bridged phone holds (re-INVITE sendonly) and resumes (sendrecv); the app does nothing about it',
  run: (ctx) => holdScenario(ctx, false),
};

export const holdAppMoh: Scenario = {
  name: 'hold-app-moh',
  about: 'as hold, and the app starts MOH on the other party at ChannelHold and stops it at ChannelUnhold',
  run: (ctx) => holdScenario(ctx, true),
};
