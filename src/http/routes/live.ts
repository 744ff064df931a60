// GET /live: what the live page shows, as server-sent events.
//
// On connecting, a browser gets one `snapshot` (the transfers in flight, the
// last PAGE_FINISHED finished ones, and the calls). Then:
// - transfers, as they are recorded: `transfer-started`, `transfer-step`
//   (one step) and `transfer-finished` (the whole transfer, once): small
//   events, never the whole history again;
// - calls: the registry changes with every channel event, and with thousands
//   of calls sending it per change would cost more than the calls
//   themselves. So it is read once per `callsIntervalMs` (one pass over the
//   in-memory registry for all browsers together, and only while a browser
//   is connected), summarised to at most PAGE_CALLS calls with the totals,
//   and a `calls` event is sent only when that summary changed.
import type { FastifyPluginAsync } from 'fastify';
import type { RegistryStore } from '../../registry/types.js';
import type { TransferHistory } from '../../transfer/history.js';
import { summarizeCalls, type CallsSummary } from '../calls-summary.js';
import { SseHub } from '../sse.js';

const PAGE_FINISHED = 50;
const PAGE_CALLS = 200;
const CALLS_INTERVAL_MS = 1000;

export interface LiveRoutesOptions {
  history: Pick<TransferHistory, 'inFlight' | 'latestFinished' | 'subscribe'>;
  store: Pick<RegistryStore, 'listChannels' | 'listBridges'>;
  /** How often the calls are read while a browser watches (tests shorten it). */
  callsIntervalMs?: number;
}

export const liveRoutes: FastifyPluginAsync<LiveRoutesOptions> = async (app, { history, store, callsIntervalMs = CALLS_INTERVAL_MS }) => {
  const hub = new SseHub();
  let lastCalls = '';
  let ticker: NodeJS.Timeout | undefined;
  let reading = false;

  // Reads the calls and sends them to the browsers connected if they changed;
  // a browser connecting gets them in its snapshot, so nobody gets them twice.
  const refreshCalls = async (): Promise<CallsSummary> => {
    const [channels, bridges] = await Promise.all([store.listChannels(), store.listBridges()]);
    const calls = summarizeCalls(channels, bridges, PAGE_CALLS);
    const text = JSON.stringify(calls);
    if (text !== lastCalls) {
      lastCalls = text;
      hub.broadcast('calls', calls);
    }
    return calls;
  };

  const tick = async () => {
    if (reading) return;
    reading = true;
    try {
      await refreshCalls();
    } catch (err) {
      app.log.warn({ err }, 'the live page could not read the calls');
    } finally {
      reading = false;
    }
    if (hub.size === 0 && ticker) {
      clearInterval(ticker);
      ticker = undefined;
    }
  };

  const unsubscribe = history.subscribe((e) => {
    if (e.type === 'started') hub.broadcast('transfer-started', e.transfer);
    else if (e.type === 'step') hub.broadcast('transfer-step', { transferId: e.transferId, step: e.step });
    else hub.broadcast('transfer-finished', e.transfer);
  });

  app.addHook('preClose', async () => hub.closeAll());
  app.addHook('onClose', async () => {
    unsubscribe();
    if (ticker) clearInterval(ticker);
  });

  // No HEAD twin: a HEAD request would hold an event stream open for nothing.
  app.get('/live', { exposeHeadRoute: false }, async (_request, reply) => {
    const calls = await refreshCalls();
    const snapshot = { transfers: { inFlight: history.inFlight(), finished: history.latestFinished(PAGE_FINISHED) }, calls };
    reply.hijack();
    hub.add(reply.raw, { event: 'snapshot', data: snapshot });
    ticker ??= setInterval(() => void tick(), callsIntervalMs).unref();
  });
};
