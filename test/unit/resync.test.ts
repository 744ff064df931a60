// The registry resync after each events connection, and its retries, in the
// whole service: a fake events socket the test opens and closes, a fake REST
// whose GET /channels fails a given number of times, and fake timers.
//
// Was a bug (src/service.ts): a failed resync retried by calling the open
// handler again. Each retry counted a reconnection in
// ari_transfer_websocket_reconnects_total, the retry timer kept polling ARI
// while the socket was closed, and a reconnection during the wait started a
// second chain of retries beside the first.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AriError } from '../../src/ari/errors.js';
import type { EventStream, EventStreamHandlers } from '../../src/ari/event-stream.js';
import { loadConfig } from '../../src/config.js';
import { TransferService } from '../../src/service.js';
import { captureLogs } from '../helpers/log-capture.js';

const RETRY_MS = 1000;

class FakeEventStream implements EventStream {
  connected = false;
  readonly endpoint = 'ws://ari.invalid/ari/events?app=ari-transfer';
  constructor(private readonly handlers: EventStreamHandlers) {}
  start(): void {}
  async stop(): Promise<void> {
    if (this.connected) this.close();
  }
  open(): void {
    this.connected = true;
    this.handlers.onOpen();
  }
  close(): void {
    this.connected = false;
    this.handlers.onClose();
  }
}

let service: TransferService;
let socket: FakeEventStream;
/** GET /channels requests so far: one per resync attempt. */
let polls: number;
/** How many of the next GET /channels fail. */
let failing: number;
let baselineTimers: number;

beforeEach(() => {
  vi.useFakeTimers();
  polls = 0;
  failing = 0;
  const config = loadConfig({ ARI_URL: 'http://ari.invalid:8088', ARI_USERNAME: 'u', ARI_PASSWORD: 'p' });
  service = new TransferService(config, captureLogs().logger, {
    resyncRetryMs: RETRY_MS,
    eventStream: (_options, handlers) => (socket = new FakeEventStream(handlers)),
  });
  vi.spyOn(service.rest, 'listChannels').mockImplementation(async () => {
    polls++;
    if (failing > 0) {
      failing--;
      throw new AriError('channels.list', 'http', 500, 'Internal Server Error');
    }
    return [];
  });
  vi.spyOn(service.rest, 'listBridges').mockResolvedValue([]);
  service.start();
  baselineTimers = vi.getTimerCount();
});

afterEach(async () => {
  const stopped = service.stop(0);
  await vi.runOnlyPendingTimersAsync();
  await stopped;
  vi.useRealTimers();
});

/** Lets queued work and due timers run, `ms` of fake time later. */
const after = (ms: number) => vi.advanceTimersByTimeAsync(ms);

async function reconnects(): Promise<number> {
  const line = (await service.metrics.text()).split('\n').find((l) => l.startsWith('ari_transfer_websocket_reconnects_total '));
  return Number(line?.split(' ')[1]);
}

describe('registry resync after a connection', () => {
  it('retries a failed resync on one timer until it succeeds; retries are not reconnections', async () => {
    failing = 3;
    socket.open();
    await after(0);
    expect(polls).toBe(1);
    expect(service.ready).toBe(false);
    expect(service.notReadyReason).toBe('registry resync from ARI failed; retrying');
    expect(vi.getTimerCount()).toBe(baselineTimers + 1);

    await after(RETRY_MS - 1);
    expect(polls).toBe(1);
    await after(1);
    expect(polls).toBe(2);
    expect(vi.getTimerCount()).toBe(baselineTimers + 1);
    await after(RETRY_MS);
    expect(polls).toBe(3);
    await after(RETRY_MS);
    expect(polls).toBe(4);
    expect(service.ready).toBe(true);
    expect(vi.getTimerCount()).toBe(baselineTimers);

    await after(20 * RETRY_MS);
    expect(polls).toBe(4);
    expect(await reconnects()).toBe(0);
  });

  it('stops retrying when the socket closes, and starts afresh on the next connection, counted once', async () => {
    failing = 2;
    socket.open();
    await after(0);
    expect(polls).toBe(1);

    socket.close();
    expect(vi.getTimerCount()).toBe(baselineTimers);
    await after(20 * RETRY_MS);
    expect(polls).toBe(1);
    expect(service.notReadyReason).toBe('not connected to the ARI events WebSocket');

    socket.open();
    await after(0);
    expect(polls).toBe(2);
    await after(RETRY_MS);
    expect(polls).toBe(3);
    expect(service.ready).toBe(true);
    await after(20 * RETRY_MS);
    expect(polls).toBe(3);
    expect(await reconnects()).toBe(1);
  });

  it('a reconnection while a retry waits replaces the old chain instead of adding a second one', async () => {
    failing = 3;
    socket.open();
    await after(0);
    expect(polls).toBe(1);
    await after(RETRY_MS / 2);
    socket.close();
    socket.open();
    await after(0);
    expect(polls).toBe(2);
    expect(vi.getTimerCount()).toBe(baselineTimers + 1);

    // When the first connection's retry would have fired: nothing.
    await after(RETRY_MS / 2);
    expect(polls).toBe(2);
    await after(RETRY_MS / 2);
    expect(polls).toBe(3);
    await after(RETRY_MS);
    expect(polls).toBe(4);
    expect(service.ready).toBe(true);
    await after(20 * RETRY_MS);
    expect(polls).toBe(4);
    expect(await reconnects()).toBe(1);
  });

  it('stops retrying when the service stops', async () => {
    failing = Infinity;
    socket.open();
    await after(RETRY_MS * 2);
    expect(polls).toBe(3);
    const stopped = service.stop(0);
    await after(0);
    await stopped;
    expect(vi.getTimerCount()).toBe(baselineTimers);
    await after(20 * RETRY_MS);
    expect(polls).toBe(3);
  });
});
