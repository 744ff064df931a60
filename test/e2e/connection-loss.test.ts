// The events connection lost without Asterisk noticing: a NAT or firewall
// forgets the TCP connection, the service sees it close, Asterisk does not.
// Asterisk keeps the application active and goes on sending its events into
// the dead connection until the service connects again. Played through a TCP
// proxy (test/helpers/tcp-proxy.ts) that cuts only the service's side of
// every connection and refuses new ones for a while; the emulator keeps its
// end open, as Asterisk does.
//
// Was a bug (src/legs/dialer.ts reconcile, src/service.ts resync): after a
// reconnection the service learnt which of its legs had ended meanwhile, but
// not which had answered. A blind-transfer target that answered while the
// connection was dead had its StasisStart lost: the transfer waited for it
// until TRANSFER_TIMEOUT, then hung the answered target up and told the phone
// 503. Fixed: the resync settles a pending leg that is up and in Stasis as
// answered. Seen first on the real Asterisk (test/integration/operations.test.ts).
import { afterEach, describe, expect, it } from 'vitest';
import type { AriRequestRecord } from '../../src/ari/rest-client.js';
import { loadConfig } from '../../src/config.js';
import { Metrics } from '../../src/metrics.js';
import { TransferService } from '../../src/service.js';
import type { TransferSummary } from '../../src/transfer/observer.js';
import { AriEmulator } from '../emulator/index.js';
import { captureLogs } from '../helpers/log-capture.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { membersOf, twoPartyCall, waitUntil, type Harness, transferFinished } from './harness.js';

let emu: AriEmulator | undefined;
let proxy: TcpProxy | undefined;
let service: TransferService | undefined;
afterEach(async () => {
  await service?.stop();
  await proxy?.close();
  await emu?.close();
  service = proxy = emu = undefined;
});

/** Metrics that also keep every ARI request the service has had its answer to. */
class AnsweredRequests extends Metrics {
  readonly answered: AriRequestRecord[] = [];
  override ariRequest(r: AriRequestRecord): void {
    this.answered.push(r);
    super.ariRequest(r);
  }
  count(operation: string): number {
    return this.answered.filter((r) => r.operation === operation).length;
  }
}

/** The e2e harness, with the service talking to the emulator through the proxy. */
async function startBehindProxy(env: Record<string, string>): Promise<Harness & { proxy: TcpProxy; requests: AnsweredRequests }> {
  emu = await AriEmulator.start({ app: 'ari-transfer', username: 'asterisk', password: 'pw-secret' });
  proxy = await TcpProxy.start({ host: '127.0.0.1', port: Number(new URL(emu.url).port) });
  const logs = captureLogs('debug');
  const finished: TransferSummary[] = [];
  const config = loadConfig({ ARI_URL: proxy.url, ARI_USERNAME: 'asterisk', ARI_PASSWORD: 'pw-secret', ARI_RECONNECT_MAX_MS: '200', ROUTING: 'none', ...env });
  const requests = new AnsweredRequests();
  const s = (service = new TransferService(config, logs.logger, { observers: [{ finished: (x) => finished.push(x) }], metrics: requests, reconnectInitialMs: 20 }));
  s.start();
  await waitUntil(() => s.ready, 'the service to connect and sync');
  return { emu, service: s, logs, finished, steps: [], proxy, requests, close: async () => undefined };
}

describe('the events connection lost without Asterisk noticing', () => {
  it('the blind-transfer target answers meanwhile: the resync finds it answered, 100 then 200, alice talks to the target', async () => {
    // TRANSFER_TIMEOUT well past the wait below: the transfer must not end by timing out.
    const h = await startBehindProxy({ TRANSFER_TIMEOUT: '10' });
    const call = await twoPartyCall(h);
    h.emu.setEndpoint('carol', { kind: 'no-answer' });
    const refer = h.emu.sendRefer(call.bob.id, { kind: 'blind', destination: 'carol' });
    const legs = () => h.emu.channels().filter((c) => c.id.startsWith('transfer-'));
    await waitUntil(() => legs()[0]?.state === 'Ringing', 'carol to ring');
    const leg = legs()[0]!.id;
    // Cut once the service has its answers to the originate and the
    // ringback: only events are lost, no REST answer on its way.
    await waitUntil(() => h.requests.count('channels.originate') === 1 && h.requests.count('channels.ring') === 1, 'the answers to the originate and the ringback');

    h.proxy.refuse(true);
    h.proxy.cut('client-side');
    await waitUntil(() => !h.service.ready, 'the service to notice the drop');
    h.emu.phoneAnswers(leg);
    // Stasis() succeeded: the application was still active for the emulator,
    // and the StasisStart went into the dead connection.
    expect(h.emu.channel(leg)?.state).toBe('Up');
    h.proxy.refuse(false);

    expect(await refer.waitForTermination(5000)).toEqual([100, 200]);
    await transferFinished(h);
    expect(h.finished[0]).toMatchObject({ result: 'completed', sipfrags: [100, 200] });
    expect(membersOf(h, call.bridgeId)).toEqual([call.alice.id, leg].sort());
    expect(h.emu.channel(call.bob.id)).toBeUndefined();
    expect(h.emu.channel(call.alice.id)?.ringing).toBe(false);
  });
});
