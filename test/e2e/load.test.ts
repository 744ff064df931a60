// Load: 500 concurrent calls against the ARI emulator, with attended and
// blind transfers interleaved, targets that answer, are busy, reject, are
// unreachable or do not answer, phones hanging up in the middle, and REST
// requests failing. Repeated in rounds. Every call's outcome is known in
// advance and checked exactly:
//  - the faults are chosen per call by a seeded PRNG (at most one failed
//    request of that call, injected with failNext on paths only that call
//    uses), and each has one right outcome;
//  - hangups in the middle are tied to the REFER or to the request they
//    race with (beforeNext), not to timers; a target answers or gives up 5-105 ms
//    after it is dialled, far inside TRANSFER_TIMEOUT, so only a target that
//    never answers meets it;
//  - per call: the sipfrags the phone heard, the summary's result, which of
//    its channels are still up and who shares which bridge; nothing else
//    left in Asterisk; no transferee left hearing ringback;
//  - at rest the registry matches Asterisk; once everything is hung up it
//    is empty, nothing is in flight and no internal table holds anything;
//  - the heap does not grow from round to round.
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { TransferService } from '../../src/service.js';
import type { TransferResult } from '../../src/transfer/flow.js';
import type { TransferStart, TransferSummary } from '../../src/transfer/observer.js';
import { AriEmulator, type EndpointBehaviour, type ReferHandle } from '../emulator/index.js';
import { quiescent, waitUntil } from './harness.js';
import { seededRandom } from '../helpers/seeded-random.js';

const CALLS = 500;
/** LOAD_ROUNDS=8 to hunt a slow leak (tombstones fill up to their cap by round 7). */
const ROUNDS = Math.max(3, Number(process.env.LOAD_ROUNDS ?? 3));
/** The share of calls with one failing REST request. */
const FAULT_RATE = 0.4;
/** Seconds; only targets that never answer meet it (the others settle within 105 ms of the dial). */
const TRANSFER_TIMEOUT_S = 5;

// A real gc() without --expose-gc on the command line (vitest workers do not get it).
const gc: () => void = (() => {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Kind =
  | 'attended'
  | 'attended-unresolved' // Replaces that Asterisk could not resolve: found by Call-ID and tags
  | 'blind-answer'
  | 'blind-busy'
  | 'blind-reject'
  | 'blind-congestion'
  | 'blind-unreachable'
  | 'blind-no-answer'
  | 'blind-transferee-hangs-up' // exactly as its ringback starts
  | 'blind-transferer-hangs-up-at-once' // right after the 202, before any progress
  | 'blind-transferer-hangs-up-later' // exactly as the target is dialled (after 100 Trying)
  | 'no-transfer';

// Twenty slots: the share of each kind of call, in a round.
const MIX: Kind[] = [
  'attended', 'attended', 'attended', 'attended', 'attended-unresolved', 'attended-unresolved',
  'blind-answer', 'blind-answer', 'blind-answer', 'blind-answer', 'blind-answer',
  'blind-busy', 'blind-reject', 'blind-congestion', 'blind-unreachable', 'blind-no-answer',
  'blind-transferee-hangs-up', 'blind-transferer-hangs-up-at-once', 'blind-transferer-hangs-up-later',
  'no-transfer',
];

/** The phone's legs and the parties, by role. */
type Party = 'alice' | 'bob' | 'consult' | 'carol' | 'leg';

/** One REST request of the call that fails once with a 500. */
type Fault =
  | 'progress-100' // the 100 Trying (retried; or Asterisk puts 100 in front of the final state)
  | 'progress-final' // the terminating state (retried)
  | 'move' // attended: moving alice to carol's bridge (undone: 503)
  | 'hangup-source' // hanging bob up (retried)
  | 'hangup-consult' // attended: hanging up the replaced leg (retried)
  | 'destroy-bridge' // attended: deleting the emptied bridge (retried)
  | 'originate' // blind: placing the target's leg (503, nothing placed)
  | 'ring' // blind: ringback to alice (logged; the transfer goes on)
  | 'stop-ring' // blind: stopping alice's ringback (retried)
  | 'join'; // blind: the answered leg joining alice (the leg is dropped: 503)

/** The faults that may hit a call of each kind. */
const FAULTS: Record<Kind, Fault[]> = {
  attended: ['progress-100', 'progress-final', 'move', 'hangup-source', 'hangup-consult', 'destroy-bridge'],
  'attended-unresolved': ['progress-100', 'progress-final', 'move', 'hangup-source', 'hangup-consult', 'destroy-bridge'],
  'blind-answer': ['progress-100', 'progress-final', 'originate', 'ring', 'stop-ring', 'join', 'hangup-source'],
  'blind-busy': ['progress-100', 'progress-final', 'originate', 'ring', 'stop-ring'],
  'blind-reject': ['progress-100', 'progress-final', 'originate', 'ring', 'stop-ring'],
  'blind-congestion': ['progress-100', 'progress-final', 'ring', 'stop-ring'],
  'blind-unreachable': ['progress-100', 'progress-final', 'ring', 'stop-ring'],
  'blind-no-answer': ['progress-100', 'progress-final', 'originate', 'ring', 'stop-ring'],
  'blind-transferee-hangs-up': ['progress-100', 'progress-final'],
  'blind-transferer-hangs-up-at-once': ['originate', 'stop-ring', 'join'],
  'blind-transferer-hangs-up-later': ['progress-100', 'stop-ring', 'join'],
  'no-transfer': [],
};

/** What the phone hears and what is left of the call once its transfer is over. */
interface Outcome {
  sipfrags: number[];
  /** Terminating transfer_progress requests Asterisk took (204): one, or none when bob was already gone. */
  finalProgress: number;
  result: TransferResult | 'none';
  /** Members of the call's bridges that still exist ('call': alice and bob's; 'consult': bob and carol's). */
  bridges: { call?: Party[]; consult?: Party[] };
  /** The call's channels still up. */
  up: Party[];
}

const untouched = (c: Call): Outcome => ({
  sipfrags: c.kind === 'no-transfer' ? [] : [100, 503],
  finalProgress: c.kind === 'no-transfer' ? 0 : 1,
  result: c.kind === 'no-transfer' ? 'none' : 'failed',
  bridges: c.kind.startsWith('attended') ? { call: ['alice', 'bob'], consult: ['carol', 'consult'] } : { call: ['alice', 'bob'] },
  up: c.kind.startsWith('attended') ? ['alice', 'bob', 'carol', 'consult'] : ['alice', 'bob'],
});

/** The one right outcome for a call of this kind with this fault. */
function expectedOutcome(c: Call): Outcome {
  const failed = untouched(c);
  switch (c.kind) {
    case 'attended':
    case 'attended-unresolved':
      if (c.fault === 'move') return failed;
      return { sipfrags: [100, 200], finalProgress: 1, result: 'completed', bridges: { consult: ['alice', 'carol'] }, up: ['alice', 'carol'] };
    case 'blind-answer':
      if (c.fault === 'originate' || c.fault === 'join') return failed;
      return { sipfrags: [100, 200], finalProgress: 1, result: 'completed', bridges: { call: ['alice', 'leg'] }, up: ['alice', 'leg'] };
    case 'blind-busy':
    case 'blind-reject':
      // Placing the leg failed: the target never said no.
      return c.fault === 'originate' ? failed : { ...failed, sipfrags: [100, 603] };
    case 'blind-congestion':
    case 'blind-unreachable':
    case 'blind-no-answer':
      return failed;
    case 'blind-transferee-hangs-up':
      return { sipfrags: [100, 503], finalProgress: 1, result: 'failed', bridges: { call: ['bob'] }, up: ['bob'] };
    case 'blind-transferer-hangs-up-at-once':
    case 'blind-transferer-hangs-up-later':
      // Asterisk tells the phone 503 itself when bob hangs up (100 first if nobody had
      // sent it; the service's final state then gets 404); the transfer goes on.
      if (c.fault === 'join' || c.fault === 'originate') return { sipfrags: [100, 503], finalProgress: 0, result: 'failed', bridges: { call: ['alice'] }, up: ['alice'] };
      return { sipfrags: [100, 503], finalProgress: 0, result: 'completed', bridges: { call: ['alice', 'leg'] }, up: ['alice', 'leg'] };
    case 'no-transfer':
      return failed;
  }
}

interface Call {
  kind: Kind;
  fault?: Fault;
  /** alice talks to bob in `callBridge`; bob REFERs. */
  alice: string;
  bob: string;
  callBridge: string;
  /** Attended: bob's consultation leg, talking to carol in `consultBridge`. */
  consult?: string;
  carol?: string;
  consultBridge?: string;
  /** Blind-transfer destination (its own endpoint). */
  destination?: string;
  refer?: ReferHandle;
}

/** Log lines, parsed, in an array the test empties between rounds (captureLogs keeps every raw line too). */
function lineLog() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger('info', sink), lines };
}

interface Rig {
  emu: AriEmulator;
  service: TransferService;
  logs: ReturnType<typeof lineLog>;
  started: TransferStart[];
  finished: TransferSummary[];
  unhandled: unknown[];
}

let rig: Rig;
const onUnhandled = (reason: unknown) => rig.unhandled.push(reason);

beforeAll(async () => {
  const emu = await AriEmulator.start({ app: 'ari-transfer', username: 'asterisk', password: 'pw-secret' });
  const logs = lineLog();
  const started: TransferStart[] = [];
  const finished: TransferSummary[] = [];
  const config = loadConfig({
    ARI_URL: emu.url,
    ARI_USERNAME: 'asterisk',
    ARI_PASSWORD: 'pw-secret',
    ARI_RECONNECT_MAX_MS: '200',
    ROUTING: 'none',
    TRANSFER_TIMEOUT: String(TRANSFER_TIMEOUT_S),
    // Service, emulator and test share one process: on a busy machine a burst of 500
    // transfers can queue a request past the default 5 s. Timeouts are faults.test.ts's
    // subject; here they would only make the run depend on the machine's load.
    ARI_REQUEST_TIMEOUT_MS: '60000',
  });
  const service = new TransferService(config, logs.logger, {
    observers: [{ started: (s) => started.push(s), finished: (s) => finished.push(s) }],
    reconnectInitialMs: 20,
  });
  rig = { emu, service, logs, started, finished, unhandled: [] };
  process.on('unhandledRejection', onUnhandled);
  service.start();
  await waitUntil(() => service.ready, 'the service to connect');
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await rig?.service.stop();
  await rig?.emu.close();
});

/** Sets up CALLS calls as an ARI application would, straight through the emulator, and picks each call's fault. */
async function setUpCalls(round: number, random: () => number): Promise<Call[]> {
  const { emu } = rig;
  const calls: Call[] = [];
  for (let i = 0; i < CALLS; i++) {
    const kind = MIX[i % MIX.length]!;
    const tag = `r${round}n${i}`;
    const alice = emu.phoneCalls({ endpoint: `alice-${tag}`, exten: '100', callerName: 'Alice' });
    const bob = emu.phoneCalls({ endpoint: `bob-${tag}`, exten: '200', callerName: 'Bob' });
    emu.answer(alice.id);
    emu.answer(bob.id);
    const bridge = emu.createBridge({ name: `call-${tag}` });
    emu.addToBridge(bridge.id, alice.id);
    emu.addToBridge(bridge.id, bob.id);
    const call: Call = { kind, alice: alice.id, bob: bob.id, callBridge: bridge.id };
    if (kind.startsWith('attended')) {
      const consult = emu.phoneCalls({ endpoint: `bob-${tag}`, exten: '300', callerName: 'Bob' });
      emu.answer(consult.id);
      const consultBridge = emu.createBridge({ name: `consult-${tag}` });
      emu.addToBridge(consultBridge.id, consult.id);
      const carol = emu.originate({ endpoint: `PJSIP/carol-${tag}`, app: emu.app, callerId: 'Bob <200>' });
      Object.assign(call, { consult: consult.id, carol: carol.id, consultBridge: consultBridge.id });
    } else if (kind !== 'no-transfer') {
      call.destination = `t-${tag}`;
      const afterMs = 5 + Math.floor(random() * 60);
      const behaviour: Partial<Record<Kind, EndpointBehaviour>> = {
        'blind-answer': { kind: 'answer', afterMs },
        'blind-busy': { kind: 'busy', afterMs },
        'blind-reject': { kind: 'reject', afterMs },
        'blind-congestion': { kind: 'congestion', afterMs },
        'blind-unreachable': { kind: 'unreachable' },
        'blind-no-answer': { kind: 'no-answer' },
        'blind-transferee-hangs-up': { kind: 'no-answer' },
        'blind-transferer-hangs-up-at-once': { kind: 'answer', afterMs },
        'blind-transferer-hangs-up-later': { kind: 'answer', afterMs: afterMs + 40 },
      };
      emu.setEndpoint(call.destination, behaviour[kind]!);
    }
    const faults = FAULTS[kind];
    if (faults.length > 0 && random() < FAULT_RATE) call.fault = faults[Math.floor(random() * faults.length)]!;
    calls.push(call);
  }
  // The consultation targets answer a few ms after the originate: then bridge them.
  const attended = calls.filter((c) => c.carol);
  await emu.waitFor(() => attended.every((c) => emu.channel(c.carol!)?.state === 'Up'), 10_000);
  for (const c of attended) emu.addToBridge(c.consultBridge!, c.carol!);
  await registryMatchesEmulator('the service to see every call');
  return calls;
}

const FINAL_STATE: Partial<Record<Kind, string>> = {
  attended: 'channel_answered',
  'attended-unresolved': 'channel_answered',
  'blind-answer': 'channel_answered',
  'blind-busy': 'channel_declined',
  'blind-reject': 'channel_declined',
  'blind-congestion': 'channel_unavailable',
  'blind-unreachable': 'channel_unavailable',
  'blind-no-answer': 'channel_unavailable',
  'blind-transferee-hangs-up': 'channel_unavailable',
};

const exactly = (id: string) => new RegExp(`^${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
/** The originate of the target's leg: the only request naming alice as its originator. */
const LEG_ORIGINATE = /^\/channels\/transfer-[^/]+$/;

/** Injects the call's fault and its planned hangup, each on a request only this call makes. */
function arm(c: Call): void {
  const { emu } = rig;
  const progress = new RegExp(`^/channels/${c.bob}/transfer_progress$`);
  const fail = (m: { method: string; path: RegExp; query?: Record<string, string> }) => emu.failNext({ ...m, status: 500 });
  switch (c.fault) {
    case undefined:
      break;
    case 'progress-100':
      fail({ method: 'POST', path: progress, query: { states: 'channel_progress' } });
      break;
    case 'progress-final':
      fail({ method: 'POST', path: progress, query: { states: FINAL_STATE[c.kind]! } });
      break;
    case 'move':
      fail({ method: 'POST', path: new RegExp(`^/bridges/${c.consultBridge}/addChannel$`), query: { channel: c.alice } });
      break;
    case 'hangup-source':
      fail({ method: 'DELETE', path: exactly(`/channels/${c.bob}`) });
      break;
    case 'hangup-consult':
      fail({ method: 'DELETE', path: exactly(`/channels/${c.consult}`) });
      break;
    case 'destroy-bridge':
      fail({ method: 'DELETE', path: exactly(`/bridges/${c.callBridge}`) });
      break;
    case 'originate':
      fail({ method: 'POST', path: LEG_ORIGINATE, query: { originator: c.alice } });
      break;
    case 'ring':
      fail({ method: 'POST', path: exactly(`/channels/${c.alice}/ring`) });
      break;
    case 'stop-ring':
      fail({ method: 'DELETE', path: exactly(`/channels/${c.alice}/ring`) });
      break;
    case 'join':
      // Only the leg joins alice's bridge in a blind transfer.
      fail({ method: 'POST', path: new RegExp(`^/bridges/${c.callBridge}/addChannel$`) });
      break;
  }
  if (c.kind === 'blind-transferee-hangs-up') {
    emu.beforeNext({ method: 'POST', path: exactly(`/channels/${c.alice}/ring`), run: () => emu.phoneHangsUp(c.alice) });
  }
  if (c.kind === 'blind-transferer-hangs-up-later') {
    emu.beforeNext({ method: 'POST', path: LEG_ORIGINATE, query: { originator: c.alice }, run: () => emu.phoneHangsUp(c.bob) });
  }
}

/** The registry's channels and bridges, as Asterisk's. */
async function registryMatchesEmulator(what: string) {
  const { emu, service } = rig;
  const emulatorView = () => ({
    channels: emu.channels().map((c) => `${c.id}@${c.bridgeId ?? ''}`).sort(),
    bridges: emu.bridges().map((b) => `${b.id}:${b.channels.slice().sort().join(',')}`).sort(),
  });
  const registryView = async () => ({
    channels: (await service.registry.store.listChannels()).map((c) => `${c.id}@${c.bridgeId ?? ''}`).sort(),
    bridges: (await service.registry.store.listBridges()).map((b) => `${b.id}:${b.channelIds.slice().sort().join(',')}`).sort(),
  });
  await waitUntil(async () => JSON.stringify(await registryView()) === JSON.stringify(emulatorView()), what, 15_000).catch(() => {});
  expect(await registryView()).toEqual(emulatorView());
}

/** Sends the REFERs in a shuffled order (those to targets that never answer first), a few at a time. */
async function referAll(calls: Call[], random: () => number): Promise<void> {
  const { emu } = rig;
  const order = calls.filter((c) => c.kind !== 'no-transfer');
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  // Targets that never answer first: their TRANSFER_TIMEOUT then runs while the others are carried out.
  order.sort((x, y) => Number(y.kind === 'blind-no-answer') - Number(x.kind === 'blind-no-answer'));
  for (const [n, call] of order.entries()) {
    arm(call);
    call.refer = call.kind.startsWith('attended')
      ? emu.sendRefer(call.bob, {
          kind: 'attended',
          destination: '300',
          replaces: replacesOf(call.consult!),
          ...(call.kind === 'attended-unresolved' ? { resolvable: false } : {}),
        })
      : emu.sendRefer(call.bob, { kind: 'blind', destination: call.destination! });
    if (call.kind === 'blind-transferer-hangs-up-at-once') emu.phoneHangsUp(call.bob);
    if (n % 20 === 19) await sleep(1); // let the service interleave its work with new REFERs
  }
}

function replacesOf(channelId: string) {
  const d = rig.emu.dialogOf(channelId);
  return { callId: d.callId, fromTag: d.remoteTag, toTag: d.localTag };
}

/** What is left of a call in Asterisk, in the same terms as `Outcome`; `claimed` collects every id it accounts for. */
function observedOutcome(
  c: Call,
  summary: TransferSummary | undefined,
  seen: { legs: Map<string, string>; finalProgress: Map<string, number> },
  claimed: Set<string>,
): Outcome {
  const { emu } = rig;
  const roles = new Map<string, Party>([
    [c.alice, 'alice'],
    [c.bob, 'bob'],
  ]);
  if (c.consult) roles.set(c.consult, 'consult');
  if (c.carol) roles.set(c.carol, 'carol');
  const leg = seen.legs.get(c.alice);
  if (leg) roles.set(leg, 'leg');
  const role = (id: string): Party | string => roles.get(id) ?? `stranger ${id}`;
  const members = (bridgeId: string | undefined) => {
    const b = bridgeId === undefined ? undefined : emu.bridge(bridgeId);
    if (!b) return undefined;
    claimed.add(b.id);
    return b.channels.map(role).sort() as Party[];
  };
  const bridges: Outcome['bridges'] = {};
  const call = members(c.callBridge);
  if (call) bridges.call = call;
  const consult = members(c.consultBridge);
  if (consult) bridges.consult = consult;
  const up = [...roles.keys()].filter((id) => emu.channel(id) !== undefined);
  for (const id of up) claimed.add(id);
  return {
    sipfrags: c.refer?.sipfrags ?? [],
    finalProgress: seen.finalProgress.get(c.bob) ?? 0,
    result: summary?.result ?? 'none',
    bridges,
    up: up.map(role).sort() as Party[],
  };
}

/** What the service holds in memory besides the registry: all must empty out between calls. */
function internals() {
  const s = rig.service as unknown as {
    watch: { watchers: Map<unknown, unknown> };
    dialer: { pending: Map<unknown, unknown>; own: Set<unknown>; abandoned?: Set<unknown> };
    router: { dialing: Map<unknown, unknown>; bridges: Set<unknown> };
    transfers: { inFlight: Map<unknown, unknown>; aborts: Map<unknown, unknown>; claimed: Map<unknown, unknown> };
    registry: { store: { tombstones: Map<unknown, unknown>; maxTombstones: number } };
  };
  return {
    watchers: s.watch.watchers.size,
    pendingDials: s.dialer.pending.size,
    ownLegs: s.dialer.own.size,
    abandonedLegs: s.dialer.abandoned?.size ?? 0,
    routerDialing: s.router.dialing.size,
    routerBridges: s.router.bridges.size,
    inFlight: s.transfers.inFlight.size,
    aborts: s.transfers.aborts.size,
    claimedBridges: s.transfers.claimed.size,
  };
}

function tombstones() {
  const store = rig.service.registry.store as unknown as { tombstones: Map<unknown, unknown>; maxTombstones: number };
  return { size: store.tombstones.size, max: store.maxTombstones };
}

const describeCall = (c: Call | undefined) => (c ? `${c.kind}${c.fault ? ` (${c.fault} fails)` : ''} ${c.bob}` : 'not a transferee');

/** JSON with keys in sorted order, to compare outcomes regardless of how they were built. */
const canonical = (x: unknown): string =>
  JSON.stringify(x, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([p], [q]) => p.localeCompare(q))) : v,
  );

async function playRound(round: number): Promise<void> {
  const { emu, service, logs, started, finished } = rig;
  const random = seededRandom(1000 + round);
  const calls = await setUpCalls(round, random);
  const before = emu.requests.length;

  await referAll(calls, random);
  const referred = calls.filter((c) => c.refer);

  // Every REFER's subscription ends, and every transfer that started finishes.
  await waitUntil(() => referred.every((c) => c.refer!.terminated), 'every REFER to get its final NOTIFY', 40_000).catch((err: Error) => {
    const open = referred.filter((c) => !c.refer!.terminated).map((c) => `${describeCall(c)} [${c.refer!.sipfrags.join(',')}]`);
    throw new Error(`${err.message}: ${open.length} still open, e.g. ${open.slice(0, 5).join('; ')}`);
  });
  await waitUntil(() => service.transfers.activeCount === 0 && finished.length === started.length, 'every transfer to finish', 20_000);
  await quiescent(rig);

  // One transfer per REFER.
  const bySource = new Map(finished.map((s) => [s.sourceChannelId, s]));
  expect(finished).toHaveLength(referred.length);
  expect(bySource.size).toBe(referred.length);
  // Every planned fault hit its request, and nothing else failed.
  const requests = emu.requests.slice(before);
  const injected = requests.filter((r) => r.injected === 'failure');
  const names = (r: (typeof requests)[number]) => [r.path, ...Object.values(r.query)].join(' ');
  const missed = calls.filter((c) => c.fault && !injected.some((r) => [c.alice, c.bob, c.consult, c.callBridge, c.consultBridge].some((id) => id && names(r).includes(id))));
  expect(missed.map(describeCall), 'calls whose planned fault found no request to fail').toEqual([]);
  expect(injected.length).toBe(calls.filter((c) => c.fault).length);
  // (Asterisk's own 500 "Allocation failed" for an unreachable endpoint is no fault of ours.)
  const unreachable = new Set(calls.filter((c) => c.kind === 'blind-unreachable').map((c) => c.alice));
  const allocationFailed = (r: (typeof requests)[number]) => LEG_ORIGINATE.test(r.path) && unreachable.has(r.query.originator ?? '');
  expect(requests.filter((r) => r.status >= 500 && r.injected === undefined && !allocationFailed(r))).toEqual([]);

  // Each call ends exactly as planned.
  const legs = new Map<string, string>();
  const finalProgress = new Map<string, number>();
  for (const r of requests) {
    if (r.method !== 'POST') continue;
    if (LEG_ORIGINATE.test(r.path) && r.query.originator) legs.set(r.query.originator, r.path.slice('/channels/'.length));
    const progressOn = /^\/channels\/([^/]+)\/transfer_progress$/.exec(r.path)?.[1];
    if (progressOn && r.status === 204 && r.query.states !== 'channel_progress') finalProgress.set(progressOn, (finalProgress.get(progressOn) ?? 0) + 1);
  }
  const claimed = new Set<string>();
  const wrong: { call: string; expected: Outcome; observed: Outcome }[] = [];
  for (const c of calls) {
    const expected = expectedOutcome(c);
    const observed = observedOutcome(c, bySource.get(c.bob), { legs, finalProgress }, claimed);
    if (canonical(observed) !== canonical(expected)) wrong.push({ call: describeCall(c), expected, observed });
  }
  expect(wrong.slice(0, 5)).toEqual([]);
  // Nothing else is left in Asterisk, and no transferee still hears ringback or music.
  expect(emu.channels().filter((ch) => !claimed.has(ch.id)).map((ch) => ch.id)).toEqual([]);
  expect(emu.bridges().filter((b) => !claimed.has(b.id)).map((b) => b.id)).toEqual([]);
  const byAlice = new Map(calls.map((c) => [c.alice, c]));
  expect(emu.channels().filter((ch) => ch.ringing || ch.mohPlaying).map((ch) => `${ch.id}: ${describeCall(byAlice.get(ch.id))}`)).toEqual([]);
  // Not a single bug path taken.
  expect(logs.lines.filter((l) => l.msg === 'transfer crashed' || l.msg === 'event processing failed' || l.msg === 'event handler failed')).toEqual([]);

  // At rest, the registry is Asterisk's picture.
  await registryMatchesEmulator('the registry to settle');

  // The application ends every call; then nothing is left anywhere.
  for (const c of emu.channels()) emu.hangup(c.id);
  for (const b of emu.bridges()) emu.destroyBridge(b.id);
  expect(emu.channels()).toEqual([]);
  expect(emu.bridges()).toEqual([]);
  await waitUntil(async () => (await service.registry.store.counts()).channels === 0, 'the registry to empty', 15_000);
  await waitUntil(async () => (await service.registry.store.counts()).bridges === 0, 'the registry to empty', 15_000);
  expect(await service.registry.store.counts()).toEqual({ channels: 0, bridges: 0, callIds: 0 });
  expect(service.transfers.activeCount).toBe(0);
  expect(internals()).toEqual({
    watchers: 0,
    pendingDials: 0,
    ownLegs: 0,
    abandonedLegs: 0,
    routerDialing: 0,
    routerBridges: 0,
    inFlight: 0,
    aborts: 0,
    claimedBridges: 0,
  });
  const t = tombstones();
  expect(t.size).toBeLessThanOrEqual(t.max);
  expect(rig.unhandled).toEqual([]);

  // Forget what the test itself recorded, so that only the service's memory is measured.
  emu.forgetHistory();
  logs.lines.length = 0;
  started.length = 0;
  finished.length = 0;
}

async function settledHeap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    await sleep(20);
    gc();
  }
  return process.memoryUsage().heapUsed;
}

describe(`load: ${CALLS} concurrent calls, ${ROUNDS} rounds`, () => {
  it('every call ends exactly as its kind and its faults say, nothing is left behind, and memory does not grow from round to round', async () => {
    const heaps: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      await playRound(round);
      heaps.push(await settledHeap());
    }
    const mb = heaps.map((x) => Math.round(x / 1e5) / 10);
    const why = `heap after each round (MB): ${mb.join(', ')}`;
    // Round 1 also warms everything up (JIT, pools): the generous bound...
    for (const h of heaps.slice(1)) expect(h, why).toBeLessThan(2 * heaps[0]! + 8e6);
    // ...and between warm rounds, no steady growth: 4 MB a round is 8 KB per call; a
    // round of this test measures about +0.4 MB (ended-channel tombstones filling up).
    for (let r = 2; r < heaps.length; r++) expect(heaps[r]! - heaps[r - 1]!, why).toBeLessThan(4e6);
    expect(tombstones().size).toBeLessThanOrEqual(tombstones().max);
  }, 180_000);
});
