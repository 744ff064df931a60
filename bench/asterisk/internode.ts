// `npm run bench:internode`: an attended transfer across two real Asterisk
// nodes (the consultation call on node b, the REFER on node a: a call
// between the nodes joins them), beside the same transfer within node a,
// in the same run: REFER sent → NOTIFY 200 received, from the transferring
// SIPp phone's own message trace. Two Asterisks of the local install
// (ASTERISK_PREFIX), a service on each, one redis-server; all on loopback.
//
// BENCH_RUNS=20 (default) transfers of each kind.
import os from 'node:os';
import { AriProbe } from '../../test/integration/harness.js';
import { nodeServiceEnv, startNodes, type Node } from '../../test/integration/nodes.js';
import { exitOf, SippPhone } from '../../test/integration/phones.js';
import { ServiceProcess } from '../../test/integration/service-process.js';
import { RedisServer } from '../../test/helpers/redis-server.js';
import { fixed, percentile, table } from '../stats.js';
import { referLatencyMs } from './sipp-timing.js';

const RUNS = Number(process.env.BENCH_RUNS ?? '20');
if (!(Number.isInteger(RUNS) && RUNS > 0 && RUNS <= 500)) throw new Error('BENCH_RUNS must be a whole number from 1 to 500');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function main(): Promise<void> {
  console.log(`ari-transfer: attended transfer across two nodes vs within one; ${os.cpus().length} × ${os.cpus()[0]?.model.trim()}; node ${process.version}; ${new Date().toISOString()}`);
  const [nodes, redis] = await Promise.all([startNodes(), RedisServer.start()]);
  const services: ServiceProcess[] = [];
  try {
    for (const node of [nodes.a, nodes.b]) services.push(ServiceProcess.start(nodeServiceEnv(node, redis.url, { LOG_LEVEL: 'info' })));
    for (const s of services) await until('a service to be ready', () => s.ready());
    const results: Record<'across' | 'within', number[]> = { across: [], within: [] };
    for (let run = 0; run < RUNS; run++) {
      // Alternated, so that both see the same machine over time.
      for (const kind of ['within', 'across'] as const) {
        const ms = await transfer(nodes.a, kind === 'across' ? nodes.b : nodes.a);
        results[kind].push(ms);
        process.stderr.write(`  … ${kind} ${run + 1}/${RUNS}: ${fixed(ms, 1)} ms\n`);
      }
    }
    console.log(
      table(
        ['attended transfer', 'runs', 'REFER → NOTIFY 200 p50 ms', 'p90 ms', 'max ms'],
        (['within', 'across'] as const).map((kind) => [
          kind === 'within' ? 'within node a (baseline)' : 'across nodes (a → b)',
          String(results[kind].length),
          fixed(percentile(results[kind], 50), 1),
          fixed(percentile(results[kind], 90), 1),
          fixed(Math.max(...results[kind]), 1),
        ]),
      ),
    );
  } finally {
    for (const s of services) await s.kill();
    await Promise.all([nodes.dispose(), redis.stop()]);
  }
}

/** alice and bob on node a; bob's consultation call to carol on `carolNode`; bob REFERs; resolves with his REFER → 200. */
async function transfer(a: Node, carolNode: Node): Promise<number> {
  const phones: SippPhone[] = [];
  const phone = (node: Node, options: Parameters<typeof SippPhone.start>[0]) => {
    const p = SippPhone.start(options, { host: '127.0.0.1', port: node.target.sipPort });
    phones.push(p);
    return p;
  };
  try {
    const threePcc = `127.0.0.1:${a.target.phones.threePcc}`;
    phone(carolNode, { scenario: 'uas_answer.xml', phone: '1003', port: carolNode.target.phones['1003'] });
    phone(carolNode, { scenario: 'uac_att_consult.xml', phone: '1002', port: carolNode.target.phones.consult, call: '1003', keys: { consult_ms: '300' }, threePcc });
    await sleep(300);
    const bobFirst = phone(a, { scenario: 'uas_att_referer.xml', phone: '1002', port: a.target.phones['1002'], keys: { refer_target: '1003' }, threePcc });
    await sleep(300);
    const alice = phone(a, { scenario: 'uac_call_wait_bye.xml', phone: '1001', port: a.target.phones['1001'], call: '1002' });
    if ((await exitOf(bobFirst, 30_000)) !== 0) throw new Error(`bob's transfer failed: ${bobFirst.diagnostics()}`);
    const ms = referLatencyMs(bobFirst.trace());
    if (ms === undefined) throw new Error(`no REFER → 200 in bob's trace: ${bobFirst.diagnostics()}`);
    const ari = new AriProbe(a.target);
    for (const c of await ari.channelsOf('1001')) await ari.call('DELETE', `/channels/${encodeURIComponent(c.id)}`);
    await exitOf(alice, 10_000);
    for (const p of phones) await exitOf(p, 10_000);
    for (const node of new Set([a, carolNode])) {
      const probe = new AriProbe(node.target);
      await until(`node ${node.name} to be clean`, async () => (await probe.channels()).length === 0 && (await probe.bridges()).length === 0);
    }
    return ms;
  } finally {
    for (const p of phones) p.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
