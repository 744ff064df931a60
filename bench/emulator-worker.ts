// The ARI emulator on its own thread (its own event loop, as Asterisk is its
// own process), driven by the benchmark's main thread. It sets calls up with
// the emulator's scenario API, makes the phones REFER, and times each REFER
// on the emulator's side: from the moment the ChannelTransfer is emitted to
// the moment the terminating transfer_progress request is handled.
//
// The timing hook is here, not in the emulator: the emulator appends each
// sipfrag a phone receives to the public `ReferHandle.sipfrags` array,
// synchronously while it handles the transfer_progress request, so wrapping
// that array's `push` gives the handling time of every progress request.
import { parentPort } from 'node:worker_threads';
import { WebSocket } from 'ws';
import { AriEmulator, type ReferHandle, type ReferSpec } from '../test/emulator/index.js';
import {
  ARI_APP,
  ARI_PASSWORD,
  ARI_USER,
  type Barrier,
  type Counts,
  type Envelope,
  type ReferBatchResult,
  type ReplyEnvelope,
  type TransferKind,
  type WorkerReplies,
  type WorkerRequest,
} from './protocol.js';

interface PreparedCall {
  sourceId: string;
  spec: ReferSpec;
}

let emu: AriEmulator | undefined;
let dummySocket: WebSocket | undefined;
const prepared: PreparedCall[] = [];
let seq = 0;

function emulator(): AriEmulator {
  if (!emu) throw new Error('emulator not started');
  return emu;
}

function counts(): Counts {
  const e = emulator();
  return { channels: e.channels().length, bridges: e.bridges().length };
}

/** Hangs up every channel and deletes every bridge (through the emulator's REST path). */
function cleanAll(): void {
  const e = emulator();
  for (const c of e.channels()) {
    try {
      e.hangup(c.id);
    } catch {
      // Already going away.
    }
  }
  for (const b of e.bridges()) e.destroyBridge(b.id);
}

/**
 * Attended: alice + bob's first call in one bridge, bob's consultation call +
 * carol (originated through ARI, answers at once) in another; the REFER is on
 * bob's first call and its Replaces names the consultation call, which the
 * emulator resolves (Asterisk-resolved). Blind: alice + bob in one bridge,
 * bob REFERs to carol.
 */
function setUpCall(kind: TransferKind): { call: PreparedCall; barrier: Barrier } {
  const e = emulator();
  const n = ++seq;
  const alice = e.phoneCalls({ endpoint: 'alice', exten: '100', callerName: 'Alice' });
  e.answer(alice.id);
  if (kind === 'blind') {
    const bob = e.phoneCalls({ endpoint: 'bob', exten: '200', callerName: 'Bob' });
    e.answer(bob.id);
    const bridge = e.createBridge({ name: `call-${n}` });
    e.addToBridge(bridge.id, alice.id);
    e.addToBridge(bridge.id, bob.id);
    return { call: { sourceId: bob.id, spec: { kind: 'blind', destination: 'carol' } }, barrier: { channelId: bob.id, bridgeId: bridge.id } };
  }
  const bobFirst = e.phoneCalls({ endpoint: 'bob', exten: '200', callerName: 'Bob' });
  e.answer(bobFirst.id);
  const original = e.createBridge({ name: `original-${n}` });
  e.addToBridge(original.id, alice.id);
  e.addToBridge(original.id, bobFirst.id);
  const bobConsult = e.phoneCalls({ endpoint: 'bob', exten: '1003', callerName: 'Bob' });
  e.answer(bobConsult.id);
  const consult = e.createBridge({ name: `consult-${n}` });
  e.addToBridge(consult.id, bobConsult.id);
  const carol = e.originate({ endpoint: 'PJSIP/carol', app: ARI_APP, channelId: `carol-${n}`, callerId: 'Bob <bob>' });
  e.addToBridge(consult.id, carol.id);
  const d = e.dialogOf(bobConsult.id);
  return {
    call: {
      sourceId: bobFirst.id,
      spec: { kind: 'attended', destination: '1003', replaces: { callId: d.callId, fromTag: d.remoteTag, toTag: d.localTag } },
    },
    barrier: { channelId: carol.id, bridgeId: consult.id },
  };
}

/** Records when each sipfrag is appended, i.e. when its transfer_progress request is handled. */
function onSipfrags(handle: ReferHandle, onCode: (code: number, at: number) => void): void {
  const frags = handle.sipfrags;
  const push = frags.push;
  frags.push = (...codes: number[]): number => {
    const at = performance.now();
    const length = push.apply(frags, codes);
    for (const code of codes) onCode(code, at);
    return length;
  };
}

/** Closed loop: keeps `concurrency` REFERs pending; a new one starts as soon as one is terminated. */
function referBatch(count: number, concurrency: number, deadlineMs: number): Promise<ReferBatchResult> {
  const e = emulator();
  const calls = prepared.splice(0, count);
  const result: ReferBatchResult = { sent: 0, terminated: 0, lost: 0, refused: 0, codes: {}, latencyMs: [], tryingMs: [], wallMs: 0 };
  let next = 0;
  let pending = 0;
  let started = 0;
  let lastTermination = 0;
  return new Promise((resolve) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      result.lost = result.sent - result.terminated;
      result.wallMs = result.terminated > 0 ? lastTermination - started : 0;
      resolve(result);
    };
    const launch = (): void => {
      while (!done && pending < concurrency && next < calls.length) {
        const call = calls[next++]!;
        const t0 = performance.now();
        if (started === 0) started = t0;
        let handle: ReferHandle;
        try {
          handle = e.sendRefer(call.sourceId, call.spec);
        } catch {
          result.refused++;
          continue;
        }
        result.sent++;
        pending++;
        let trying = false;
        let over = false;
        onSipfrags(handle, (code, at) => {
          if (over) return;
          if (code === 100 && !trying) {
            trying = true;
            result.tryingMs.push(at - t0);
            return;
          }
          if (code === 100) return;
          over = true;
          result.terminated++;
          result.codes[code] = (result.codes[code] ?? 0) + 1;
          result.latencyMs.push(at - t0);
          lastTermination = at;
          pending--;
          // Not from inside the request handler: the next REFER's event must
          // not overtake the echo the emulator is about to emit.
          setImmediate(launch);
        });
      }
      if (next >= calls.length && pending === 0) finish();
    };
    const deadline = setTimeout(finish, deadlineMs);
    launch();
  });
}

/** N channels in N/2 two-party bridges, with an idle events socket keeping the app active. */
async function populate(channels: number): Promise<Counts> {
  const e = emulator();
  if (!dummySocket) {
    const socket = new WebSocket(`${e.url.replace('http', 'ws')}/ari/events?app=${ARI_APP}`, {
      headers: { Authorization: `Basic ${Buffer.from(`${ARI_USER}:${ARI_PASSWORD}`).toString('base64')}` },
    });
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    socket.on('message', () => undefined);
    dummySocket = socket;
  }
  for (let i = 0; i < channels / 2; i++) {
    const a = e.phoneCalls({ endpoint: `ph${i % 1000}a`, exten: '100' });
    const b = e.phoneCalls({ endpoint: `ph${i % 1000}b`, exten: '200' });
    e.answer(a.id);
    e.answer(b.id);
    const bridge = e.createBridge({ name: `call-${i}` });
    e.addToBridge(bridge.id, a.id);
    e.addToBridge(bridge.id, b.id);
  }
  return counts();
}

async function handle(req: WorkerRequest): Promise<WorkerReplies[keyof WorkerReplies]> {
  switch (req.op) {
    case 'start': {
      emu = await AriEmulator.start({ app: ARI_APP, username: ARI_USER, password: ARI_PASSWORD, noiseEvents: req.noiseEvents });
      // The target answers at once: its StasisStart goes out before the originate's 200.
      emu.setEndpoint('carol', { kind: 'answer', afterMs: 0 });
      return { url: emu.url };
    }
    case 'setup': {
      if (req.cleanFirst) cleanAll();
      let barrier: Barrier | undefined;
      for (let i = 0; i < req.count; i++) {
        const made = setUpCall(req.kind);
        prepared.push(made.call);
        barrier = made.barrier;
      }
      if (!barrier) throw new Error('setup of zero calls');
      return { barrier, counts: counts() };
    }
    case 'refer':
      return referBatch(req.count, req.concurrency, req.deadlineMs);
    case 'counts':
      return counts();
    case 'populate':
      return populate(req.channels);
    case 'close': {
      dummySocket?.terminate();
      dummySocket = undefined;
      prepared.length = 0;
      await emu?.close();
      emu = undefined;
      return null;
    }
  }
}

const port = parentPort;
if (!port) throw new Error('emulator-worker.ts runs as a worker thread');
port.on('message', (envelope: Envelope) => {
  handle(envelope.request).then(
    (result) => port.postMessage({ id: envelope.id, ok: true, result } satisfies ReplyEnvelope),
    (err: unknown) => port.postMessage({ id: envelope.id, ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) } satisfies ReplyEnvelope),
  );
});
