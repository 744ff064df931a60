// `npm run demo` end to end (as a child process, the way a newcomer runs it),
// and the ladder builder on small synthetic observations.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Bridge, Channel, ChannelState } from '../../src/ari/models.js';
import { formatStep, makeStyle } from '../../scripts/demo/format.js';
import { buildLadder, resultLine, type LadderInput } from '../../scripts/demo/ladder.js';
import { phoneOfEndpoint } from '../../scripts/demo/phones.js';
import type { EmittedEvent, RequestRecord } from '../emulator/index.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runDemo(): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.LOG_LEVEL;
  delete env.DEMO_VERBOSE;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 12_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The lines of the section whose heading contains `title`. */
function section(out: string, title: string): string[] {
  const sections = out.split(/^(?=── )/m);
  const found = sections.find((s) => s.split('\n')[0]!.includes(`. ${title} ─`));
  if (!found) throw new Error(`no section "${title}" in:\n${out}`);
  return found.split('\n');
}

function indexOf(lines: string[], pattern: RegExp): number {
  return lines.findIndex((l) => pattern.test(l));
}

describe('npm run demo', () => {
  let run: Run;
  beforeAll(async () => {
    run = await runDemo();
  }, 15_000);

  it('exits 0, on its own, with plain text', () => {
    expect(run.code, `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`).toBe(0);
    expect(run.stdout).toContain('All 3 scenarios ended as expected.');
    expect(run.stdout).not.toContain('\u001b[');
    expect(run.stdout).not.toContain('✗');
  });

  it('attended: REFER with Replaces, 100 then 200, alice moved into the bridge with carol, bob hung up', () => {
    const lines = section(run.stdout, 'Attended transfer');
    expect(indexOf(lines, /^ bob\s+→ PBX\s+REFER\s+Refer-To: 1003\?Replaces=<bob↔carol call>$/)).toBeGreaterThan(0);
    expect(indexOf(lines, /^ bob\s+→ PBX\s+re-INVITE \(hold\)/)).toBeGreaterThan(0);
    expect(indexOf(lines, /^ PBX\s+→ alice\s+♪ music on hold/)).toBeGreaterThan(0);
    const trying = indexOf(lines, /^ PBX\s+→ bob\s+NOTIFY SIP\/2\.0 100 Trying/);
    const move = indexOf(lines, /^ bridge call-\w+\s+alice leaves\s+→ enters bridge call-\w+ \(with bob, carol\)/);
    const ok = indexOf(lines, /^ PBX\s+→ bob\s+NOTIFY SIP\/2\.0 200 OK/);
    expect(trying).toBeGreaterThan(0);
    expect(move).toBeGreaterThan(trying);
    expect(ok).toBeGreaterThan(move);
    expect(lines.filter((l) => /^ PBX\s+→ bob\s+BYE/.test(l))).toHaveLength(2);
    expect(indexOf(lines, /^ Result: alice ⇄ carol talking in call-\w+; hung up: bob \(2 legs\)$/)).toBeGreaterThan(ok);
    expect(indexOf(lines, /^ ✓ as expected/)).toBeGreaterThan(0);
  });

  it('blind: REFER to 1003, 100 then 200, carol joins, bob is hung up after the 200, dave talks to carol', () => {
    const lines = section(run.stdout, 'Blind transfer');
    const refer = indexOf(lines, /^ bob\s+→ PBX\s+REFER\s+Refer-To: 1003$/);
    const trying = indexOf(lines, /^ PBX\s+→ bob\s+NOTIFY SIP\/2\.0 100 Trying/);
    const joins = indexOf(lines, /^ bridge call-\w+\s+carol joins \(with dave, bob\)/);
    const ok = indexOf(lines, /^ PBX\s+→ bob\s+NOTIFY SIP\/2\.0 200 OK/);
    const bye = indexOf(lines, /^ PBX\s+→ bob\s+BYE/);
    expect(refer).toBeGreaterThan(0);
    expect(trying).toBeGreaterThan(refer);
    expect(joins).toBeGreaterThan(trying);
    expect(ok).toBeGreaterThan(joins);
    expect(bye).toBeGreaterThan(ok);
    expect(indexOf(lines, /^ Result: dave ⇄ carol talking in call-\w+; hung up: bob \(1 leg\)$/)).toBeGreaterThan(ok);
  });

  it('blind to a busy phone: 100 then 603, dave back with bob', () => {
    const lines = section(run.stdout, 'Blind transfer to a busy phone');
    const trying = indexOf(lines, /^ PBX\s+→ bob\s+NOTIFY SIP\/2\.0 100 Trying/);
    const busy = indexOf(lines, /^ carol\s+→ PBX\s+486 Busy Here/);
    const decline = indexOf(lines, /^ PBX\s+→ bob\s+NOTIFY SIP\/2\.0 603 Decline/);
    expect(trying).toBeGreaterThan(0);
    expect(busy).toBeGreaterThan(trying);
    expect(decline).toBeGreaterThan(busy);
    expect(indexOf(lines, /^ Result: dave ⇄ bob talking in call-\w+ \(as before the REFER\)/)).toBeGreaterThan(decline);
  });
});

// ---- the ladder builder on synthetic observations ---------------------------------------

function channel(id: string, endpoint: string, state: ChannelState, exten = 's'): Channel {
  return {
    id,
    name: `PJSIP/${endpoint}-0000000${id.length % 10}`,
    state,
    caller: { name: '', number: endpoint },
    connected: { name: '', number: '' },
    accountcode: '',
    dialplan: { context: 'from-phones', exten, priority: 1 },
    creationtime: '2026-01-01T00:00:00.000+0000',
    language: 'en',
  };
}

function bridge(id: string, channels: string[]): Bridge {
  return { id, technology: 'simple_bridge', bridge_type: 'mixing', bridge_class: 'stasis', creator: 'Stasis', name: '', channels, creationtime: '' };
}

let clock = 0;
function ev(type: string, fields: Partial<EmittedEvent> = {}): EmittedEvent {
  return { type, timestamp: `2026-01-01T00:00:00.${String(clock++).padStart(3, '0')}+0000`, application: 'ari-transfer', ...fields };
}

function render(input: LadderInput): string[] {
  const ladder = buildLadder(input);
  const style = makeStyle(false);
  return [...ladder.steps.map((s) => formatStep(s, style).replace(/\s+/g, ' ').trim()), resultLine(ladder)];
}

describe('ladder builder', () => {
  const dave = channel('dave-1', '1004', 'Ring', '1002');
  const bobLeg = channel('bob-1', '1002', 'Down');
  const carolLeg = channel('carol-1', '1003', 'Down');
  const up = (c: Channel): Channel => ({ ...c, state: 'Up' });
  const referredBy = { source_channel: up(bobLeg) };

  const blindEvents: EmittedEvent[] = [
    ev('ChannelCreated', { channel: dave }),
    ev('ChannelCreated', { channel: bobLeg }),
    ev('ChannelStateChange', { channel: up(bobLeg) }),
    ev('ChannelStateChange', { channel: up(dave) }),
    ev('ChannelEnteredBridge', { channel: up(dave), bridge: bridge('b1', ['dave-1']) }),
    ev('ChannelEnteredBridge', { channel: up(bobLeg), bridge: bridge('b1', ['dave-1', 'bob-1']) }),
    ev('ChannelTransfer', { refer_to: { requested_destination: { destination: '1003' } }, referred_by: referredBy }),
    ev('ChannelTransfer', { state: 'channel_progress', refer_to: { requested_destination: { destination: '1003' } }, referred_by: referredBy }),
    ev('ChannelCreated', { channel: carolLeg }),
    ev('ChannelStateChange', { channel: up(carolLeg) }),
    ev('ChannelEnteredBridge', { channel: up(carolLeg), bridge: bridge('b1', ['dave-1', 'bob-1', 'carol-1']) }),
    ev('ChannelLeftBridge', { channel: up(bobLeg), bridge: bridge('b1', ['dave-1', 'carol-1']) }),
    ev('ChannelTransfer', { state: 'channel_answered', refer_to: { requested_destination: { destination: '1003' } }, referred_by: referredBy }),
    ev('ChannelHangupRequest', { channel: up(bobLeg), cause: 32, soft: true }),
    ev('StasisEnd', { channel: up(bobLeg) }),
    ev('ChannelDestroyed', { channel: up(bobLeg), cause: 16, cause_txt: 'Normal Clearing' }),
  ];

  it('turns a blind transfer into REFER, 202, NOTIFYs from the phone, bridge moves, BYE and the result', () => {
    const lines = render({
      events: blindEvents,
      hangups: [{ channelId: 'bob-1', name: bobLeg.name, cause: 16, by: 'ari' }],
      refers: [{ sourceChannelId: 'bob-1', notifies: [{ code: 100, subscriptionState: 'active' }, { code: 200, subscriptionState: 'terminated' }] }],
      phoneOf: phoneOfEndpoint,
    });
    expect(lines).toEqual([
      'dave → PBX INVITE 1002 (bob)',
      'PBX → bob INVITE 1002 routed',
      'bob → PBX 200 OK bob answers',
      'PBX → dave 200 OK',
      'bridge b1 dave ⇄ bob talking',
      'bob → PBX REFER Refer-To: 1003',
      'PBX → bob 202 Accepted',
      'PBX → bob NOTIFY SIP/2.0 100 Trying',
      'PBX → carol INVITE 1003 for the transfer',
      'carol → PBX 200 OK carol answers',
      'bridge b1 carol joins (with dave, bob)',
      'bridge b1 bob leaves → dave ⇄ carol talking',
      'PBX → bob NOTIFY SIP/2.0 200 OK subscription terminated',
      'PBX → bob BYE call with dave, hung up by ari-transfer',
      'Result: dave ⇄ carol talking in b1; hung up: bob (1 leg)',
    ]);
  });

  it('without the phone’s NOTIFYs, infers them from the progress echoes', () => {
    const lines = render({ events: blindEvents, phoneOf: phoneOfEndpoint });
    expect(lines.filter((l) => l.includes('NOTIFY'))).toEqual([
      'PBX → bob NOTIFY SIP/2.0 100 Trying',
      'PBX → bob NOTIFY SIP/2.0 200 OK subscription terminated',
    ]);
  });

  it('places music on hold, which has no event, after the hold that caused it', () => {
    const alice = up(channel('alice-1', '1001', 'Up', '1002'));
    const bob = up(bobLeg);
    const requests: RequestRecord[] = [
      { method: 'POST', path: '/bridges/b1/addChannel', query: { channel: 'alice-1' }, status: 204 },
      { method: 'POST', path: '/bridges/b1/addChannel', query: { channel: 'bob-1' }, status: 204 },
      { method: 'POST', path: '/channels/alice-1/moh', query: { mohClass: 'default' }, status: 204 },
    ];
    const lines = render({
      events: [
        ev('ChannelEnteredBridge', { channel: alice, bridge: bridge('b1', ['alice-1']) }),
        ev('ChannelEnteredBridge', { channel: bob, bridge: bridge('b1', ['alice-1', 'bob-1']) }),
        ev('ChannelHold', { channel: bob }),
        ev('ChannelCreated', { channel: channel('bob-2', '1002', 'Ring', '1003') }),
      ],
      requests,
      phoneOf: phoneOfEndpoint,
    });
    expect(lines).toEqual([
      'bridge b1 alice ⇄ bob talking',
      'bob → PBX re-INVITE (hold) bob puts alice on hold',
      'PBX → alice ♪ music on hold alice hears music',
      "bob → PBX INVITE 1003 (carol) bob's second call",
      'Result: alice ⇄ bob talking in b1; hung up: nobody',
    ]);
  });
});
