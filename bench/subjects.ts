// What the benchmark puts in front of the emulator: the real service, or the
// floor client on one of two HTTP clients.
import { AriRestClient } from '../src/ari/rest-client.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { TransferService } from '../src/service.js';
import { FetchRest, FloorClient } from './floor.js';
import { ARI_APP, ARI_PASSWORD, ARI_USER, type Barrier } from './protocol.js';

export interface Subject {
  readonly name: string;
  start(): Promise<void>;
  /** It has processed the event `barrier` names (the last of a setup). */
  sawSetup(barrier: Barrier): Promise<boolean>;
  /** Transfers it has finished (all its REST calls returned). */
  readonly finished: number;
  /** Of those, how many did not complete (service: not `completed`; floor: a REST call failed). */
  readonly failed: number;
  stop(): Promise<void>;
}

export type SubjectName = 'service' | 'floor-fetch' | 'floor-axios';

export const SUBJECT_LABEL: Record<SubjectName, string> = {
  service: 'service',
  'floor-fetch': 'floor (ws + fetch)',
  'floor-axios': 'floor (ws + service REST client)',
};

export function makeSubject(name: SubjectName, url: string): Subject {
  if (name === 'service') return new ServiceSubject(url);
  const rest =
    name === 'floor-fetch'
      ? new FetchRest(url, ARI_USER, ARI_PASSWORD)
      : new AriRestClient({ url, username: ARI_USER, password: ARI_PASSWORD, timeoutMs: 5000 });
  return new FloorSubject(name, new FloorClient(url, ARI_USER, ARI_PASSWORD, rest));
}

/** The real service, in-process, configured as README's ROUTING=none with LOG_LEVEL=silent. */
class ServiceSubject implements Subject {
  readonly name = 'service';
  finished = 0;
  failed = 0;
  private readonly service: TransferService;

  constructor(url: string) {
    const config = loadConfig({
      ARI_URL: url,
      ARI_USERNAME: ARI_USER,
      ARI_PASSWORD: ARI_PASSWORD,
      ARI_APP: ARI_APP,
      ROUTING: 'none',
      LOG_LEVEL: 'silent',
    });
    this.service = new TransferService(config, createLogger(config.logLevel), {
      observers: [
        {
          finished: (s) => {
            this.finished++;
            if (s.result !== 'completed') this.failed++;
          },
        },
      ],
    });
  }

  async start(): Promise<void> {
    this.service.start();
    await waitFor(() => this.service.ready, 'the service to connect and resync', 10_000);
  }

  async sawSetup(b: Barrier): Promise<boolean> {
    return (await this.service.registry.store.getChannel(b.channelId))?.bridgeId === b.bridgeId;
  }

  stop(): Promise<void> {
    return this.service.stop(5000);
  }
}

class FloorSubject implements Subject {
  constructor(
    readonly name: string,
    private readonly client: FloorClient,
  ) {}

  get finished(): number {
    return this.client.done + this.client.failed;
  }

  get failed(): number {
    return this.client.failed;
  }

  start(): Promise<void> {
    return this.client.start();
  }

  async sawSetup(b: Barrier): Promise<boolean> {
    return this.client.sawEntered(b.bridgeId, b.channelId);
  }

  stop(): Promise<void> {
    return this.client.stop();
  }
}

/** Polls every millisecond; throws after `timeoutMs`. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await predicate())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}
