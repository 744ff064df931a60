// What asterisk-config/ promises about the running Asterisk, checked on it.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { asteriskCli, scenarios, until } from './harness.js';

scenarios('asterisk-config on a real Asterisk', {}, (ctx) => {
  it.skipIf(!ctx.t.pidFile || !ctx.t.rtpPorts)('a call\'s audio (RTP) listens on loopback only, like SIP', async () => {
    ctx.phone({ scenario: 'uas_answer.xml', phone: '1002' });
    await new Promise((r) => setTimeout(r, 300));
    ctx.phone({ scenario: 'uac_call_wait_bye.xml', phone: '1001', call: '1002' });
    await until('alice and bob to talk', async () => (await ctx.ari.bridgedPhones()).length === 1, 10_000, ctx.explain);
    // This Asterisk's UDP sockets in its RTP range (another instance's range may overlap).
    const pid = readFileSync(ctx.t.pidFile!, 'utf8').trim();
    const { start, end } = ctx.t.rtpPorts!;
    const rtpSockets = spawnSync('ss', ['-Huanp'], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter((line) => line.includes(`pid=${pid},`))
      .map((line) => line.trim().split(/\s+/)[3] ?? '')
      .filter((local) => {
        const port = Number(local.slice(local.lastIndexOf(':') + 1));
        return port >= start && port <= end;
      });
    // Two legs, RTP and RTCP each.
    expect(rtpSockets).toHaveLength(4);
    expect(rtpSockets.filter((local) => !local.startsWith('127.0.0.1:'))).toEqual([]);
    await ctx.hangUp('1001');
    await ctx.expectNothingLeft();
  });

  it.skipIf(!ctx.t.cli)('loads what the service relies on: func_channel required, func_callerid (CONNECTEDLINE()), .wav music on hold playable', async () => {
    expect(asteriskCli(ctx.t, 'module show like func_channel')).toMatch(/func_channel\.so\s.*Running/);
    expect(asteriskCli(ctx.t, 'module show like func_callerid')).toMatch(/func_callerid\.so\s.*Running/);
    expect(asteriskCli(ctx.t, 'module show like format_wav')).toMatch(/format_wav\.so\s.*Running/);
    expect(asteriskCli(ctx.t, 'moh show classes')).toMatch(/Class: default/);
    await ctx.expectNothingLeft();
  });
});
