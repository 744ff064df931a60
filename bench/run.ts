// `npm run bench`: the service against the ARI emulator on loopback, beside
// a bare client making the same ARI calls (the floor); then the registry's
// memory and resync time; then the shared registry on Redis (e). Prints
// tables; writes nothing. See BENCHMARKS.md.
//
// BENCH_SCALE=0.2 (for example) shrinks every sample count, for a quick look.
import os from 'node:os';
import type { TransferKind } from './protocol.js';
import { registryMemory, registryResync } from './registry-bench.js';
import { failoverTime, lookupLatency, updateRate, withRedis } from './shared-registry-bench.js';
import { fixed, mean, percentile, table, thousands } from './stats.js';
import { SUBJECT_LABEL, type SubjectName } from './subjects.js';
import { latency, requestRoundTrip, throughput, type LatencyResult, type ThroughputResult } from './transfer-bench.js';

const scale = Number(process.env.BENCH_SCALE ?? '1');
if (!(scale > 0 && scale <= 10)) throw new Error('BENCH_SCALE must be in (0, 10]');
const n = (count: number) => Math.max(1, Math.round(count * scale));
// BENCH_ONLY=a,c (for example) runs only those parts.
const only = new Set((process.env.BENCH_ONLY ?? 'a,b,c,d,e').split(',').map((s) => s.trim()));
// BENCH_KINDS=blind (for example) runs (a) and (b) for that kind only.
const KINDS = (process.env.BENCH_KINDS ?? 'attended,blind').split(',').map((s) => s.trim()) as TransferKind[];
if (KINDS.some((k) => k !== 'attended' && k !== 'blind')) throw new Error('BENCH_KINDS: attended, blind');

const LATENCY_WARMUP = n(50);
const LATENCY_SAMPLES = n(500);
const LATENCY_ROUNDS = Math.min(5, LATENCY_SAMPLES);
const THROUGHPUT: { concurrency: number; total: number; warmup: number }[] = [
  { concurrency: 1, total: n(200), warmup: n(50) },
  { concurrency: 50, total: n(1000), warmup: n(200) },
  { concurrency: 500, total: n(2000), warmup: n(500) },
];
const THROUGHPUT_REPEATS = 3;
const ROUND_TRIP_WARMUP = n(200);
const ROUND_TRIP_SAMPLES = n(2000);
const MEMORY_SIZES = [10_000, 100_000];
const RESYNC_CHANNELS = 10_000;
const RESYNC_RUNS = 5;
const SHARED_CALLS = n(10_000);
const LOOKUP_SAMPLES = n(2000);
const LOOKUP_CALLS_PER_NODE = n(5000);
const FAILOVER_RUNS = Math.max(3, n(20));
const FAILOVER_LEASE_MS = 5000; // HA_LEASE_MS's default

const KIND_LABEL: Record<TransferKind, string> = {
  attended: 'attended (Asterisk-resolved)',
  blind: 'blind (target answers at once)',
};

function progress(what: string): void {
  process.stderr.write(`  … ${what}\n`);
}

function heading(title: string): void {
  console.log(`\n${title}\n${'='.repeat(title.length)}`);
}

function loadavg(): string {
  return os
    .loadavg()
    .map((l) => fixed(l, 2))
    .join(', ');
}

function machine(): void {
  const cpus = os.cpus();
  const models = [...new Set(cpus.map((c) => c.model.trim()))].join(', ');
  console.log('ari-transfer benchmark');
  console.log(`machine: ${os.type()} ${os.release()} ${os.arch()}; ${cpus.length} × ${models}; ${fixed(os.totalmem() / 2 ** 30, 1)} GiB RAM`);
  console.log(`node ${process.version} (V8 ${process.versions.v8}); ${new Date().toISOString()}${scale !== 1 ? `; BENCH_SCALE=${scale}` : ''}`);
  console.log(`load average (1, 5, 15 min) at start: ${loadavg()}`);
  console.log('the emulator runs in a worker thread (its own event loop); the service or the floor client on the main thread; loopback only');
}

async function latencyTables(): Promise<void> {
  heading(`(a) latency: ChannelTransfer emitted → terminating transfer_progress handled, one transfer at a time (${LATENCY_SAMPLES} samples after ${LATENCY_WARMUP} warm-up, per row), ms, emulator clock`);
  const subjects: SubjectName[] = ['service', 'floor-fetch', 'floor-axios'];
  const rows: string[][] = [];
  for (const kind of KINDS) {
    progress(`(a) ${kind}: ${subjects.map((x) => SUBJECT_LABEL[x]).join(', ')}, in ${LATENCY_ROUNDS} interleaved rounds`);
    const results: Map<SubjectName, LatencyResult> = await latency(subjects, kind, LATENCY_WARMUP, LATENCY_SAMPLES, LATENCY_ROUNDS);
    const floorP50 = percentile(results.get('floor-fetch')!.latencyMs, 50);
    for (const s of subjects) {
      const r = results.get(s)!;
      const p50 = percentile(r.latencyMs, 50);
      rows.push([
        KIND_LABEL[kind],
        SUBJECT_LABEL[s],
        fixed(percentile(r.tryingMs, 50)),
        fixed(p50),
        fixed(percentile(r.latencyMs, 90)),
        fixed(percentile(r.latencyMs, 99)),
        fixed(mean(r.latencyMs)),
        s === 'floor-fetch' ? '-' : `${p50 >= floorP50 ? '+' : ''}${fixed(p50 - floorP50)}`,
        String(r.failures),
      ]);
    }
  }
  console.log(
    table(['transfer', 'client', '100 Trying p50', 'final p50', 'final p90', 'final p99', 'final mean', 'p50 − floor (fetch)', 'not 200'], rows),
  );
  console.log('"100 Trying" is the first transfer_progress (channel_progress); "final" the terminating one (channel_answered → 200).');

  progress('(a) one loopback ARI request');
  const rt = await requestRoundTrip(ROUND_TRIP_WARMUP, ROUND_TRIP_SAMPLES);
  console.log(`\nFor scale, one ARI request on loopback (GET /ari/bridges → [], back to back, ${ROUND_TRIP_SAMPLES} samples), ms:`);
  console.log(
    table(
      ['HTTP client', 'p50', 'p90', 'p99'],
      [
        ['fetch (undici)', fixed(percentile(rt.fetchMs, 50), 3), fixed(percentile(rt.fetchMs, 90), 3), fixed(percentile(rt.fetchMs, 99), 3)],
        [
          'service REST client (axios)',
          fixed(percentile(rt.restClientMs, 50), 3),
          fixed(percentile(rt.restClientMs, 90), 3),
          fixed(percentile(rt.restClientMs, 99), 3),
        ],
      ],
    ),
  );
}

async function throughputTables(): Promise<void> {
  heading(`(b) throughput: transfers per second with \`concurrency\` REFERs pending at all times (closed loop), median of ${THROUGHPUT_REPEATS} runs`);
  const subjects: SubjectName[] = ['service', 'floor-fetch'];
  const rows: string[][] = [];
  for (const kind of KINDS) {
    for (const { concurrency, total, warmup } of THROUGHPUT) {
      const runs = new Map<SubjectName, ThroughputResult[]>(subjects.map((x) => [x, []]));
      // Interleaved, so that a noisy moment on the machine falls on both clients alike.
      for (let rep = 0; rep < THROUGHPUT_REPEATS; rep++) {
        for (const s of subjects) {
          progress(`(b) ${kind}, concurrency ${concurrency}, ${SUBJECT_LABEL[s]}, run ${rep + 1}/${THROUGHPUT_REPEATS}`);
          runs.get(s)!.push(await throughput(s, kind, concurrency, total, warmup));
        }
      }
      for (const s of subjects) {
        const all = runs.get(s)!;
        const rate = (r: ThroughputResult) => (r.wallMs > 0 ? r.terminated / (r.wallMs / 1000) : 0);
        const sorted = [...all].sort((x, y) => rate(x) - rate(y));
        const r = sorted[Math.floor((sorted.length - 1) / 2)]!; // the median run
        const sum = (f: (x: ThroughputResult) => number) => all.reduce((acc, x) => acc + f(x), 0);
        const codes: Record<string, number> = {};
        for (const x of all) for (const [code, count] of Object.entries(x.codes)) codes[code] = (codes[code] ?? 0) + count;
        rows.push([
          kind,
          SUBJECT_LABEL[s],
          String(concurrency),
          String(sum((x) => x.sent)),
          String(sum((x) => x.terminated)),
          String(sum((x) => x.lost + x.refused)),
          Object.entries(codes)
            .map(([code, count]) => `${count}×${code}`)
            .join(' ') || '-',
          `${sum((x) => x.finished - x.subjectFailed)}/${sum((x) => x.sent)}`,
          fixed(rate(r), 0),
          `${fixed(rate(sorted[0]!), 0)}–${fixed(rate(sorted[sorted.length - 1]!), 0)}`,
          fixed(percentile(r.latencyMs, 50), 1),
          fixed(percentile(r.latencyMs, 99), 1),
          `${fixed(r.subjectBusy * 100, 0)} %`,
          fixed(r.subjectCpuPerTransferMs, 2),
          `${fixed(r.emulatorBusy * 100, 0)} %`,
          fixed(r.emulatorCpuPerTransferMs, 2),
          fixed(r.processCpuPerTransferMs, 2),
        ]);
      }
    }
  }
  console.log(
    table(
      [
        'transfer',
        'client',
        'conc.',
        'REFERs',
        'terminated',
        'lost',
        'final sipfrags',
        'completed',
        'transfers/s',
        'range',
        'p50 ms',
        'p99 ms',
        'client busy',
        'client ms/t',
        'emu. busy',
        'emu. ms/t',
        'CPU ms/t',
      ],
      rows,
    ),
  );
  console.log(
    [
      'conc.: REFERs pending at all times. REFERs, terminated, lost, final sipfrags, completed: summed over the runs (timed batches only);',
      '  lost: never terminated (or not sendable); completed: transfers the client saw through (service: result "completed").',
      'transfers/s: the median run, whose other columns follow; range: slowest–fastest run. p50, p99: latency of each REFER (as in (a)) under that load.',
      'busy: event-loop utilisation of the client (main) thread and of the emulator thread; ms/t: that busy time per transfer.',
      'CPU ms/t: user + system CPU of the whole process (both threads, GC) per transfer; unlike busy time, not inflated by other processes.',
      'Each run: its own emulator and client; all calls set up first, then an untimed warm-up batch, then the timed batch.',
    ].join('\n'),
  );
}

async function memoryTable(): Promise<void> {
  heading('(c) registry memory per tracked channel (CallRegistry + MemoryRegistryStore, StasisStart + ChannelEnteredBridge, 2 channels per bridge)');
  const rows: string[][] = [];
  for (const size of MEMORY_SIZES) {
    progress(`(c) ${size} channels`);
    const r = await registryMemory(size);
    rows.push([
      thousands(r.channels),
      thousands(r.bridges),
      thousands(r.callIds),
      fixed(r.heapDeltaBytes / 2 ** 20, 1),
      thousands(r.heapDeltaBytes / r.channels),
      thousands((2 * r.heapDeltaBytes) / r.channels),
    ]);
  }
  console.log(table(['channels', 'bridges', 'Call-IDs indexed', 'heap delta MiB', 'bytes/channel', 'bytes/two-party call'], rows));
  console.log('heapUsed after a full GC, minus heapUsed before the registry was created.');
}

async function resyncTable(): Promise<void> {
  heading(`(d) registry resync from ${thousands(RESYNC_CHANNELS)} channels (GET /channels + GET /bridges from the emulator, then the store rebuilt)`);
  progress('(d) populating the emulator');
  const r = await registryResync(RESYNC_CHANNELS, RESYNC_RUNS);
  const listP50 = percentile(r.listMs, 50);
  const warmP50 = percentile(r.warmMs, 50);
  console.log(
    table(
      ['channels', 'bridges', 'JSON KiB', 'first resync ms', 'later resync p50 ms', 'later resync max ms', 'of which GETs p50 ms', 'rebuild ≈ ms'],
      [
        [
          thousands(r.channels),
          thousands(r.bridges),
          thousands(r.responseBytes / 1024),
          fixed(r.coldMs, 1),
          fixed(warmP50, 1),
          fixed(Math.max(...r.warmMs), 1),
          fixed(listP50, 1),
          fixed(warmP50 - listP50, 1),
        ],
      ],
    ),
  );
  console.log(`first: into an empty registry (start-up); later: ${RESYNC_RUNS} runs over the full registry (reconnection). GETs include the emulator building the JSON.`);
}

async function sharedRegistryTables(): Promise<void> {
  heading('(e) shared registry on a real redis-server (REGISTRY=redis), each beside its baseline');
  await withRedis(async (url) => {
    progress(`(e) registry updates, ${thousands(SHARED_CALLS)} calls`);
    const rates = [await updateRate('memory', SHARED_CALLS, url), await updateRate('redis', SHARED_CALLS, url)];
    console.log(
      table(
        ['store', 'calls', 'events', 'events/s', 'CPU µs/event', 'Redis bytes/call'],
        rates.map((r) => [
          r.store,
          thousands(r.calls),
          thousands(r.events),
          thousands(r.events / r.seconds),
          fixed((r.cpuMs * 1000) / r.events, 1),
          r.redisBytesPerCall === undefined ? '-' : thousands(r.redisBytesPerCall),
        ]),
      ),
    );
    console.log('events: StasisStart ×2 + ChannelEnteredBridge ×2 per two-party call, applied one per event-loop turn as WebSocket messages arrive; redis: until the last write is in Redis.');
    const rows: string[][] = [];
    for (const nodes of [2, 10]) {
      progress(`(e) Call-ID look-ups, ${nodes} nodes`);
      for (const r of await lookupLatency(url, nodes, LOOKUP_CALLS_PER_NODE, LOOKUP_SAMPLES)) {
        rows.push([r.where, String(nodes), thousands(r.samples.length), fixed(percentile(r.samples, 50), 3), fixed(percentile(r.samples, 99), 3)]);
      }
    }
    console.log(table(['Call-ID look-up', 'nodes', 'samples', 'p50 ms', 'p99 ms'], rows));
    console.log(`each node holds ${thousands(LOOKUP_CALLS_PER_NODE)} calls; "another node": from the first node, of Call-IDs on the last.`);
    progress(`(e) failover, ${FAILOVER_RUNS} runs`);
    const failovers = await failoverTime(url, FAILOVER_RUNS, FAILOVER_LEASE_MS);
    console.log(
      table(
        ['active killed → serving again', 'HA_LEASE_MS', 'runs', 'p50 s', 'max s'],
        failovers.map((f) => [f.how, thousands(f.leaseMs), String(f.samples.length), fixed(percentile(f.samples, 50) / 1000, 2), fixed(Math.max(...f.samples) / 1000, 2)]),
      ),
    );
    console.log('SIGKILL of the serving process → GET /readyz 200 from the one serving next (emulator as Asterisk); the lone instance is started again at once, as a supervisor would.');
  });
}

async function main(): Promise<void> {
  const started = performance.now();
  machine();
  if (only.has('a')) await latencyTables();
  if (only.has('b')) await throughputTables();
  if (only.has('c')) await memoryTable();
  if (only.has('d')) await resyncTable();
  if (only.has('e')) await sharedRegistryTables();
  console.log(`\ntotal ${fixed((performance.now() - started) / 1000, 0)} s; load average at the end: ${loadavg()}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
