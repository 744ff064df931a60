// Originate failures: the far end answers 486/603/503, an endpoint without a
// contact, a dial string naming no endpoint, and the originate `timeout`.
// Shows originate's status codes, Dial events' dialstatus, the hangup events'
// causes, and what the phone gets (sipp log).

import { ARI_APP, PORTS } from '../asterisk.js';
import type { Scenario, ScenarioContext } from '../context.js';

/** Originates `endpoint` as `id`; waits for ChannelDestroyed when the originate was accepted. */
async function originateAndWait(ctx: ScenarioContext, id: string, endpoint: string, timeout: number): Promise<void> {
  const since = ctx.main.received.length;
  const r = await ctx.ari.call('POST', `/channels/${id}`, {
    endpoint,
    app: ARI_APP,
    appArgs: 'transfer-target',
    callerId: '"Alice" <1001>',
    timeout,
  });
  ctx.note(`POST /channels/${id} endpoint=${endpoint} -> ${r.status} ${r.status === 200 ? '' : JSON.stringify(r.body)}`.trim());
  if (r.status === 200) {
    const destroyed = await ctx.waitEvent('ChannelDestroyed', id, since, (timeout + 10) * 1000);
    ctx.note(`ChannelDestroyed cause=${String(destroyed.cause)} cause_txt=${String(destroyed.cause_txt)}`);
    const dials = ctx.main.received.slice(since).filter((e) => e.type === 'Dial').map((e) => String(e.dialstatus) || '""');
    ctx.note(`Dial dialstatus sequence: ${dials.join(' → ') || '(no Dial events)'}`);
    const hr = ctx.main.received.slice(since).filter((e) => e.type === 'ChannelHangupRequest');
    ctx.note(`ChannelHangupRequest: ${hr.map((e) => JSON.stringify({ cause: e.cause, soft: e.soft })).join(', ') || 'none'}`);
  }
  await ctx.sleep(800);
  const after = await ctx.ari.call('GET', `/channels/${id}`);
  ctx.note(`GET /channels/${id} afterwards -> ${after.status}`);
}

function rejecting(name: string, code: number, reason: string): Scenario {
  return {
    name,
    about: `originate to a phone that rings, then answers ${code} ${reason}`,
    async run(ctx) {
      await ctx.connectMain();
      const phone = ctx.phone({
        label: '1003',
        scenario: 'uas_reject.xml',
        phone: '1003',
        port: PORTS.phone(3),
        template: { code: String(code), reason },
      });
      await ctx.sleep(500);
      await originateAndWait(ctx, `rec-${name}`, 'PJSIP/1003', 20);
      await phone.done(10_000);
    },
  };
}

export const dialBusy = rejecting('dial-busy', 486, 'Busy Here');
export const dialRejected = rejecting('dial-rejected', 603, 'Decline');
export const dialCongestion = rejecting('dial-congestion', 503, 'Service Unavailable');

export const dialUnreachable: Scenario = {
  name: 'dial-unreachable',
  about: 'originate to endpoint 1009, whose AOR has no contact (a phone that never registered)',
  async run(ctx) {
    await ctx.connectMain();
    await originateAndWait(ctx, 'rec-dial-unreachable', 'PJSIP/1009', 20);
  },
};

export const dialUnknown: Scenario = {
  name: 'dial-unknown',
  about: 'originate to PJSIP/nosuch: a dial string naming no endpoint',
  async run(ctx) {
    await ctx.connectMain();
    await originateAndWait(ctx, 'rec-dial-unknown', 'PJSIP/nosuch', 20);
  },
};

export const dialTimeout: Scenario = {
  name: 'dial-timeout',
  about: 'originate with timeout=3 to a phone that rings forever',
  async run(ctx) {
    await ctx.connectMain();
    const phone = ctx.phone({ label: '1003', scenario: 'uas_ring_forever.xml', phone: '1003', port: PORTS.phone(3) });
    await ctx.sleep(500);
    const t0 = ctx.now();
    await originateAndWait(ctx, 'rec-dial-timeout', 'PJSIP/1003', 3);
    ctx.note(`originate to ChannelDestroyed (+0.8 s wait) took ${((ctx.now() - t0) / 1000).toFixed(2)} s with timeout=3`);
    await phone.done(10_000);
  },
};
