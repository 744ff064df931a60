// The service, in-process, against the ARI emulator over real HTTP and
// WebSocket on loopback. Scenarios set calls up the way the recorded
// traces' harness did, then let phones REFER and observe the outcome.
import type { Channel } from '../../src/ari/models.js';
import { loadConfig } from '../../src/config.js';
import { TransferService } from '../../src/service.js';
import { LEG_MARK, SOURCE_MARK } from '../../src/transfer/recovery.js';
import type { TransferStep, TransferSummary } from '../../src/transfer/observer.js';
import { AriEmulator, type RequestRecord } from '../emulator/index.js';
import { captureLogs, type CapturedLogs } from '../helpers/log-capture.js';

export interface Harness {
  emu: AriEmulator;
  service: TransferService;
  logs: CapturedLogs;
  finished: TransferSummary[];
  /** Every step of every transfer, as observers see them. */
  steps: TransferStep[];
  close(): Promise<void>;
}

export async function startHarness(env: Record<string, string> = {}): Promise<Harness> {
  // ari.conf channelvars as asterisk-config/ sets them: the transfers' marks in every snapshot.
  const emu = await AriEmulator.start({ app: 'ari-transfer', username: 'asterisk', password: 'pw-secret', channelvars: [SOURCE_MARK, LEG_MARK] });
  const logs = captureLogs('debug');
  const finished: TransferSummary[] = [];
  const steps: TransferStep[] = [];
  // ROUTING=none unless a test asks for the router: most scenarios bridge
  // calls themselves, as the recorded traces' harness application did.
  const config = loadConfig({
    ARI_URL: emu.url,
    ARI_USERNAME: 'asterisk',
    ARI_PASSWORD: 'pw-secret',
    ARI_RECONNECT_MAX_MS: '200',
    ROUTING: 'none',
    ...env,
  });
  const service = new TransferService(config, logs.logger, {
    observers: [{ finished: (s) => finished.push(s), step: (s) => steps.push(s) }],
    reconnectInitialMs: 20,
  });
  service.start();
  await waitUntil(() => service.ready, 'the service to connect and sync');
  return {
    emu,
    service,
    logs,
    finished,
    steps,
    async close() {
      await service.stop();
      await emu.close();
    },
  };
}

export async function waitUntil(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Waits until Asterisk and the service are both quiet: every answered REST
 * request's events and hangups have happened (a real Asterisk often answers
 * first, see the emulator's order mode) and the service sent nothing more
 * meanwhile. Assert on channels and bridges after this, not right after a
 * transfer finished.
 */
export async function quiescent(h: Pick<Harness, 'emu'>): Promise<void> {
  for (;;) {
    const sent = h.emu.requests.length;
    await h.emu.settled();
    await new Promise((r) => setTimeout(r, 10));
    if (h.emu.requests.length === sent) return;
  }
}

/** Waits until `count` transfers have finished and everything they caused has happened. */
export async function transferFinished(h: Harness, count = 1, timeoutMs = 3000): Promise<TransferSummary> {
  await waitUntil(() => h.finished.length >= count, count === 1 ? 'the transfer to finish' : `${count} transfers to finish`, timeoutMs);
  await quiescent(h);
  return h.finished[count - 1]!;
}

/** Call legs of DESIGN.md's schema: A --- bridge1 --- B (held), C --- bridge2 --- D (consultation). */
export interface AttendedCalls {
  alice: Channel; // A, the transferee
  bobFirst: Channel; // B, the phone's first call
  bobConsult: Channel; // D, the phone's consultation call
  carol: Channel; // C, the transfer target
  originalBridge: string;
  consultBridge: string;
}

/** Sets up both calls as the attended trace's harness app did, and waits until the service knows them. */
export async function setUpAttendedCalls(h: Harness, extraOnOriginal: Channel[] = []): Promise<AttendedCalls> {
  const { emu, service } = h;
  const alice = emu.phoneCalls({ endpoint: 'alice', exten: '100', callerName: 'Alice' });
  emu.answer(alice.id);
  const bobFirst = emu.phoneCalls({ endpoint: 'bob', exten: '200', callerName: 'Bob' });
  emu.answer(bobFirst.id);
  const original = emu.createBridge({ name: 'original-call' });
  for (const c of [alice, bobFirst, ...extraOnOriginal]) emu.addToBridge(original.id, c.id);

  const bobConsult = emu.phoneCalls({ endpoint: 'bob', exten: '1003', callerName: 'Bob' });
  emu.answer(bobConsult.id);
  const consult = emu.createBridge({ name: 'consult-call' });
  emu.addToBridge(consult.id, bobConsult.id);
  // The target is originated through ARI, as a real application would.
  const carolId = `carol-${bobConsult.id}`;
  await service.rest.originate({ channelId: carolId, endpoint: 'PJSIP/carol', app: 'ari-transfer', callerId: 'Bob <bob>' });
  await emu.waitFor(() => emu.channel(carolId)?.state === 'Up');
  emu.addToBridge(consult.id, carolId);

  await waitUntil(async () => (await service.registry.store.getChannel(carolId))?.bridgeId === consult.id, 'the registry to see the consultation call');
  const carol = await service.rest.getChannel(carolId);
  return { alice, bobFirst, bobConsult, carol, originalBridge: original.id, consultBridge: consult.id };
}

/** The Replaces dialog a phone names for its consultation leg (from = its own tag). */
export function replacesFor(h: Harness, channelId: string) {
  const d = h.emu.dialogOf(channelId);
  return { callId: d.callId, fromTag: d.remoteTag, toTag: d.localTag };
}

export function membersOf(h: Harness, bridgeId: string): string[] | undefined {
  return h.emu.bridge(bridgeId)?.channels.slice().sort();
}

/**
 * The phone on `sourceId` REFERs with Replaces naming `replacedId`'s dialog;
 * resolves with the sipfrags it heard once the service has finished the transfer.
 */
export async function referAttended(h: Harness, sourceId: string, replacedId: string, opts: { resolvable?: boolean } = {}) {
  const done = h.finished.length;
  const refer = h.emu.sendRefer(sourceId, {
    kind: 'attended',
    destination: '1003',
    replaces: replacesFor(h, replacedId),
    ...(opts.resolvable === false ? { resolvable: false } : {}),
  });
  const sipfrags = await refer.waitForTermination();
  return { sipfrags, summary: await transferFinished(h, done + 1) };
}

/**
 * Two phones talking in one bridge made by "the application" (ROUTING=none),
 * as the blind-* traces' harness set them up; resolves once the service sees it.
 */
export async function twoPartyCall(h: Harness, names = { a: 'alice', b: 'bob' }, bridgeName = 'call-bridge') {
  const alice = h.emu.phoneCalls({ endpoint: names.a, exten: '100', callerName: 'Alice' });
  const bob = h.emu.phoneCalls({ endpoint: names.b, exten: '200', callerName: 'Bob' });
  h.emu.answer(alice.id);
  h.emu.answer(bob.id);
  const bridge = h.emu.createBridge({ name: bridgeName });
  h.emu.addToBridge(bridge.id, alice.id);
  h.emu.addToBridge(bridge.id, bob.id);
  await waitUntil(async () => (await h.service.registry.store.getBridge(bridge.id))?.channelIds.length === 2, 'the service to see the call');
  return { alice, bob, bridgeId: bridge.id };
}

/** `POST /channels` and `POST /channels/{id}`: the originates the service sent. */
export function originates(h: Harness): RequestRecord[] {
  return h.emu.requests.filter((r) => r.method === 'POST' && /^\/channels(\/[^/]+)?$/.test(r.path));
}
