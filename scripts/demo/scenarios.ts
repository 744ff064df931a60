// The demo's scenarios: calls the phones make through the emulator, the REFER,
// what each one should end in, and the check of what it did end in.
import type { TransferResult, TransferSummary } from '../../src/transfer/transfer-handler.js';
import type { ReferHandle } from '../../test/emulator/index.js';
import { buildLadder, type Ladder } from './ladder.js';
import { alice, bob, carol, dave, phoneOfChannelName, phoneOfEndpoint, type Phone } from './phones.js';
import { mark, observedSince, settle, waitUntil, type Stage } from './stage.js';

export interface Expectation {
  /** sipfrag codes of the NOTIFYs the transferring phone must receive. */
  sipfrags: number[];
  /** Parties talking afterwards, one list per bridge. */
  talking: string[][];
  /** Phones that must have no call left. */
  gone: string[];
  /** The service's own verdict (TransferSummary.result). */
  result: TransferResult;
}

export interface Scenario {
  title: string;
  /** What the phones do, in a line (printed under the title). */
  story: string;
  expect: Expectation;
  /** Sets up the calls and sends the REFER; returns its handle. */
  play(stage: Stage): Promise<ReferHandle>;
}

export interface ScenarioOutcome {
  scenario: Scenario;
  ladder: Ladder;
  summary: TransferSummary | undefined;
  /** What differed from the expectation; empty when all is as expected. */
  problems: string[];
}

// ---- building blocks --------------------------------------------------------------

interface RoutedCall {
  /** The caller's channel (the phone's INVITE). */
  caller: string;
  /** The leg the service placed to the callee. */
  callee: string;
  bridge: string;
}

/** `caller` dials `callee`'s extension; the service routes it; the callee answers after 20 ms. */
async function routedCall(stage: Stage, caller: Phone, callee: Phone): Promise<RoutedCall> {
  const { emu } = stage;
  const known = new Set(emu.channels().map((c) => c.id));
  const call = emu.phoneCalls({ endpoint: caller.ext, exten: callee.ext, callerName: caller.display });
  let result: RoutedCall | undefined;
  await waitUntil(() => {
    const leg = emu
      .channels()
      .find((c) => !known.has(c.id) && c.direction === 'outbound' && phoneOfChannelName(c.name) === callee.name);
    const callerBridge = emu.channel(call.id)?.bridgeId;
    if (leg?.bridgeId && callerBridge === leg.bridgeId) result = { caller: call.id, callee: leg.id, bridge: leg.bridgeId };
    return result !== undefined;
  }, `${callee.name} to answer ${caller.name}`);
  // Let the service finish its call set-up before the next step.
  await settle(stage, 20);
  return result!;
}

/** The Replaces a phone names for one of its calls: Call-ID, its own tag as from-tag, Asterisk's as to-tag. */
function replacesOf(stage: Stage, channelId: string) {
  const d = stage.emu.dialogOf(channelId);
  return { callId: d.callId, fromTag: d.remoteTag, toTag: d.localTag };
}

// ---- the scenarios --------------------------------------------------------------------

export const attended: Scenario = {
  title: 'Attended transfer',
  story: 'alice calls bob; bob holds her and calls carol; bob transfers alice to carol (REFER with Replaces)',
  expect: { sipfrags: [100, 200], talking: [['alice', 'carol']], gone: ['bob'], result: 'completed' },
  async play(stage) {
    const { emu } = stage;
    emu.setEndpoint(bob.ext, { kind: 'answer', afterMs: 20 });
    emu.setEndpoint(carol.ext, { kind: 'answer', afterMs: 20 });
    const first = await routedCall(stage, alice, bob);
    emu.phoneHolds(first.callee);
    await waitUntil(() => emu.channel(first.caller)?.mohPlaying === true, 'alice to hear music on hold');
    await settle(stage, 20);
    const consult = await routedCall(stage, bob, carol);
    // On his call with alice, bob's phone refers her to carol, replacing his call with carol.
    return emu.sendRefer(first.callee, { kind: 'attended', destination: carol.ext, replaces: replacesOf(stage, consult.caller) });
  },
};

export const blind: Scenario = {
  title: 'Blind transfer',
  story: 'dave calls bob; bob transfers dave to 1003 (carol) without consulting her',
  expect: { sipfrags: [100, 200], talking: [['dave', 'carol']], gone: ['bob'], result: 'completed' },
  async play(stage) {
    const { emu } = stage;
    emu.setEndpoint(bob.ext, { kind: 'answer', afterMs: 20 });
    emu.setEndpoint(carol.ext, { kind: 'answer', afterMs: 20 });
    const call = await routedCall(stage, dave, bob);
    return emu.sendRefer(call.callee, { kind: 'blind', destination: carol.ext });
  },
};

export const blindBusy: Scenario = {
  title: 'Blind transfer to a busy phone',
  story: "dave calls bob; bob transfers dave to 1003, but carol's phone answers 486 Busy Here",
  expect: { sipfrags: [100, 603], talking: [['dave', 'bob']], gone: [], result: 'failed' },
  async play(stage) {
    const { emu } = stage;
    emu.setEndpoint(bob.ext, { kind: 'answer', afterMs: 20 });
    emu.setEndpoint(carol.ext, { kind: 'busy', afterMs: 20 });
    const call = await routedCall(stage, dave, bob);
    return emu.sendRefer(call.callee, { kind: 'blind', destination: carol.ext });
  },
};

export const SCENARIOS: readonly Scenario[] = [attended, blind, blindBusy];

// ---- running and checking ---------------------------------------------------------------

export async function runScenario(stage: Stage, scenario: Scenario): Promise<ScenarioOutcome> {
  const start = mark(stage.emu);
  const finishedBefore = stage.summaries.length;
  const problems: string[] = [];
  let refer: ReferHandle | undefined;
  try {
    refer = await scenario.play(stage);
    await refer.waitForTermination(3000);
    await waitUntil(() => stage.summaries.length > finishedBefore, 'the service to finish the transfer');
    await settle(stage);
  } catch (err) {
    problems.push((err as Error).message);
  }
  const observed = observedSince(stage.emu, start);
  const ladder = buildLadder({ ...observed, phoneOf: phoneOfEndpoint });
  const summary = stage.summaries[finishedBefore];
  if (refer) problems.push(...check(stage, scenario.expect, refer, summary));
  await hangUpEverything(stage).catch((err: unknown) => problems.push((err as Error).message));
  return { scenario, ladder, summary, problems };
}

const list = (xs: readonly unknown[]) => (xs.length ? xs.join(', ') : 'none');
const talkingText = (groups: string[][]) => (groups.length ? groups.map((g) => g.join(' ⇄ ')).join('; ') : 'nobody');

/** `NOTIFY 100, 200; alice ⇄ carol talking; bob has no call left`. */
export function describeExpectation(e: Expectation): string {
  const parts = [`NOTIFY ${list(e.sipfrags)}`, `${talkingText(e.talking)} talking`];
  if (e.gone.length) parts.push(`${e.gone.join(', ')} hung up`);
  return parts.join('; ');
}

/** Compares the emulator's state (not the ladder) with the expectation. */
export function check(stage: Stage, expect: Expectation, refer: ReferHandle, summary: TransferSummary | undefined): string[] {
  const { emu } = stage;
  const problems: string[] = [];
  if (list(refer.sipfrags) !== list(expect.sipfrags)) {
    problems.push(`NOTIFYs: expected ${list(expect.sipfrags)}, got ${list(refer.sipfrags)}`);
  }
  if (summary?.result !== expect.result) {
    problems.push(`transfer result: expected ${expect.result}, got ${summary ? `${summary.result} (${summary.reason ?? 'no reason'})` : 'none'}`);
  }
  const phoneOf = (id: string) => phoneOfChannelName(emu.channel(id)?.name ?? id);
  const talking = emu
    .bridges()
    .filter((b) => b.channels.length >= 2)
    .map((b) => b.channels.map(phoneOf).sort())
    .sort();
  const expected = expect.talking.map((g) => [...g].sort()).sort();
  if (JSON.stringify(talking) !== JSON.stringify(expected)) {
    problems.push(`talking: expected ${talkingText(expected)}, got ${talkingText(talking)}`);
  }
  for (const phone of expect.gone) {
    const left = emu.channels().filter((c) => phoneOfChannelName(c.name) === phone);
    if (left.length) problems.push(`${phone} should have no call left, has ${left.length}`);
  }
  for (const c of emu.channels()) {
    const who = phoneOfChannelName(c.name);
    if (c.mohPlaying) problems.push(`${who} still hears music on hold`);
    if (c.ringing) problems.push(`${who} still hears ringing`);
    const bridge = c.bridgeId ? emu.bridge(c.bridgeId) : undefined;
    if (!bridge || bridge.channels.length < 2) problems.push(`${who} is left alone in ${bridge ? 'a bridge' : 'no bridge'}`);
  }
  return problems;
}

/** Ends the scenario's calls the way phones do (one side hangs up), so the next starts clean. */
async function hangUpEverything(stage: Stage): Promise<void> {
  const { emu } = stage;
  for (let round = 0; round < 5 && emu.channels().length > 0; round++) {
    const first = emu.channels()[0]!;
    emu.phoneHangsUp(first.id);
    await settle(stage, 20);
  }
  await waitUntil(() => emu.channels().length === 0 && emu.bridges().length === 0, 'the calls to end after hanging up', 1000);
}
