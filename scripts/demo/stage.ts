// The demo's stage: the ARI emulator on loopback and the real service,
// in-process, connected to it over HTTP and WebSocket; plus the waits the
// scenarios need and the slice of observations each scenario made.
import type { DestinationStream } from 'pino';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { TransferService } from '../../src/service.js';
import type { TransferSummary } from '../../src/transfer/transfer-handler.js';
import { AriEmulator, type EmittedEvent, type HangupRecord, type ReferHandle, type RequestRecord } from '../../test/emulator/index.js';

const APP = 'ari-transfer';
const USER = 'demo';
const PASSWORD = 'demo-secret';

export interface Stage {
  emu: AriEmulator;
  service: TransferService;
  /** Every transfer the service finished, in order. */
  summaries: TransferSummary[];
  close(): Promise<void>;
}

export interface StageOptions {
  /** pino level for the service's JSON logs (`silent` for none). */
  logLevel: string;
  logDestination?: DestinationStream;
}

export async function startStage(opts: StageOptions): Promise<Stage> {
  const emu = await AriEmulator.start({ app: APP, username: USER, password: PASSWORD });
  try {
    // Only what the demo needs: the caller's environment must not change its outcome.
    const config = loadConfig({
      ARI_URL: emu.url,
      ARI_USERNAME: USER,
      ARI_PASSWORD: PASSWORD,
      ARI_APP: APP,
      ROUTING: 'dial',
      TRANSFER_DIAL_TEMPLATE: 'PJSIP/{exten}',
      LOG_LEVEL: opts.logLevel,
    });
    const summaries: TransferSummary[] = [];
    const service = new TransferService(config, createLogger(config.logLevel, opts.logDestination), {
      observers: [{ finished: (s) => summaries.push(s) }],
    });
    service.start();
    await waitUntil(() => service.ready, 'the service to connect to the emulator');
    return {
      emu,
      service,
      summaries,
      async close() {
        await service.stop();
        await emu.close();
      },
    };
  } catch (err) {
    await emu.close();
    throw err;
  }
}

export async function waitUntil(predicate: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until nothing has happened for `quietMs`: no event, no request, no transfer in flight. */
export async function settle(stage: Stage, quietMs = 40, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = `${stage.emu.events.length}/${stage.emu.requests.length}`;
  let since = Date.now();
  for (;;) {
    await sleep(5);
    const now = `${stage.emu.events.length}/${stage.emu.requests.length}`;
    if (now !== last || stage.service.transfers.activeCount > 0) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      return;
    }
    if (Date.now() > deadline) throw new Error('timed out waiting for the calls to settle');
  }
}

/** Positions in the emulator's records, to take what one scenario observed. */
export interface Mark {
  events: number;
  requests: number;
  hangups: number;
  refers: number;
}

export interface Observed {
  events: EmittedEvent[];
  requests: RequestRecord[];
  hangups: HangupRecord[];
  refers: ReferHandle[];
}

export function mark(emu: AriEmulator): Mark {
  return { events: emu.events.length, requests: emu.requests.length, hangups: emu.hangups.length, refers: emu.refers.length };
}

export function observedSince(emu: AriEmulator, m: Mark): Observed {
  return {
    events: emu.events.slice(m.events),
    requests: emu.requests.slice(m.requests),
    hangups: emu.hangups.slice(m.hangups),
    refers: emu.refers.slice(m.refers),
  };
}
