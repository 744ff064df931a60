// Bridge `technology` as channels come and go: a mixing bridge with 0, 1, 2, 3
// PJSIP channels and back, with bridge MOH, a holding bridge, and a mixing
// bridge with dtmf_events. Each step is followed by GET /bridges/{id} at once
// and again 300 ms later (the smart bridge settles on its technology after the
// change), and the events' snapshots show what technology they carry.

import { PORTS } from '../asterisk.js';
import type { Scenario, ScenarioContext } from '../context.js';

async function tech(ctx: ScenarioContext, bridge: string, step: string): Promise<void> {
  const now = (await ctx.ari.call('GET', `/bridges/${bridge}`)).body as { technology?: string; channels?: string[] };
  await ctx.sleep(300);
  const later = (await ctx.ari.call('GET', `/bridges/${bridge}`)).body as { technology?: string; channels?: string[] };
  ctx.note(`${bridge} ${step}: ${now.channels?.length} channels, technology at once ${now.technology}, 300 ms later ${later.technology}`);
}

export const bridgeTechnology: Scenario = {
  name: 'bridge-technology',
  about: 'bridge technology values for 0-3 PJSIP channels, bridge MOH, holding and dtmf_events bridges',
  async run(ctx) {
    await ctx.connectMain();
    for (const n of [1, 2, 3, 4]) {
      ctx.phone({ label: `100${n}`, scenario: 'uas_answer.xml', phone: `100${n}`, port: PORTS.phone(n) });
    }
    await ctx.sleep(300);
    // One after the other, so that the events come in one order (a replay can follow it).
    const members: string[] = [];
    for (const n of [1, 2, 3, 4]) members.push(await ctx.originateAnswered(`rec-${n}`, `PJSIP/100${n}`, { appArgs: 'member' }));
    const [a, b, c, d] = members;
    const add = (bridge: string, ch: string) => ctx.ari.call('POST', `/bridges/${bridge}/addChannel`, { channel: ch });
    const remove = (bridge: string, ch: string) => ctx.ari.call('POST', `/bridges/${bridge}/removeChannel`, { channel: ch });

    await ctx.ari.call('POST', '/bridges/mix', { type: 'mixing', name: 'mix' });
    await tech(ctx, 'mix', 'created');
    await add('mix', a!);
    await tech(ctx, 'mix', '+A');
    await add('mix', b!);
    await tech(ctx, 'mix', '+B');
    await add('mix', c!);
    await tech(ctx, 'mix', '+C');
    await remove('mix', c!);
    await tech(ctx, 'mix', '-C');
    await ctx.ari.call('POST', '/bridges/mix/moh', { mohClass: 'default' });
    await tech(ctx, 'mix', 'MOH started');
    await ctx.ari.call('DELETE', '/bridges/mix/moh');
    await tech(ctx, 'mix', 'MOH stopped');
    await remove('mix', b!);
    await tech(ctx, 'mix', '-B');
    await ctx.ari.call('POST', '/bridges/mix/moh', { mohClass: 'default' });
    await tech(ctx, 'mix', 'MOH started with one channel');
    await ctx.ari.call('DELETE', '/bridges/mix/moh');
    await remove('mix', a!);
    await tech(ctx, 'mix', '-A');

    await ctx.ari.call('POST', '/bridges/hold', { type: 'holding', name: 'hold' });
    await tech(ctx, 'hold', 'created');
    await add('hold', c!);
    await tech(ctx, 'hold', '+C');
    await add('hold', d!);
    await tech(ctx, 'hold', '+D');

    await ctx.ari.call('POST', '/bridges/dtmf', { type: 'mixing,dtmf_events', name: 'dtmf' });
    await tech(ctx, 'dtmf', 'created');
    await add('dtmf', a!);
    await add('dtmf', b!);
    await tech(ctx, 'dtmf', '+A +B');

    await ctx.ari.call('POST', '/bridges/proxy', { type: 'mixing,proxy_media', name: 'proxy' });
    await tech(ctx, 'proxy', 'created');
    await add('proxy', c!);
    await add('proxy', d!);
    await tech(ctx, 'proxy', '+C +D');

    for (const ch of [a, b, c, d]) await ctx.ari.call('DELETE', `/channels/${ch}`);
    for (const br of ['mix', 'hold', 'dtmf', 'proxy']) await ctx.ari.call('DELETE', `/bridges/${br}`);
  },
};
