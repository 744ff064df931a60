// The registry rebuild after each ARI events connection, and its retries.
//
// One connection gets one chain of attempts: the first when the socket
// opens, then, while attempts fail, the next one `retryMs` after the last
// failure, on a single timer. The chain ends when an attempt succeeds, when
// the socket closes (the next connection starts its own chain), or on stop.
// Attempts run in the owner's event order (its queue), so events that
// arrive while one runs are applied on top of the fresh snapshot.
//
//   disconnected --connected()--> syncing --ok--> synced
//                                   |  ^
//                              fails|  |retryMs
//                                   v  |
//                                 retry-wait
//   any --disconnected()--> disconnected;  any --stop()--> stopped (final)
import type { Logger } from '../logger.js';

export type ResyncState = 'disconnected' | 'syncing' | 'retry-wait' | 'synced' | 'stopped';

export interface ResyncLoopOptions {
  /** Rebuilds the registry (and what depends on it) from ARI; throws when it cannot. */
  resync: () => Promise<void>;
  /** Runs a task in the owner's event order. */
  enqueue: (task: () => Promise<void>) => void;
  /** Delay after a failed attempt before the next one. */
  retryMs?: number;
  logger: Logger;
}

export class ResyncLoop {
  private current: ResyncState = 'disconnected';
  private timer: NodeJS.Timeout | undefined;
  /** Bumped by every connection, close and stop: an attempt of an older one neither retries nor counts. */
  private connection = 0;
  private readonly retryMs: number;
  private readonly log: Logger;

  constructor(private readonly options: ResyncLoopOptions) {
    this.retryMs = options.retryMs ?? 1000;
    this.log = options.logger.child({ component: 'registry' });
  }

  get state(): ResyncState {
    return this.current;
  }

  /** The events socket (re)opened: rebuild the registry. */
  connected(): void {
    if (this.current === 'stopped') return;
    this.end();
    this.attempt(this.connection);
  }

  /** The events socket closed: no attempt until the next connection. */
  disconnected(): void {
    if (this.current === 'stopped') return;
    this.end();
    this.current = 'disconnected';
  }

  stop(): void {
    this.end();
    this.current = 'stopped';
  }

  /** Ends the current connection's chain: its timer, and any attempt still queued or running. */
  private end(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.connection++;
  }

  private attempt(connection: number): void {
    this.current = 'syncing';
    this.options.enqueue(async () => {
      if (connection !== this.connection) return; // closed while queued
      try {
        await this.options.resync();
      } catch (err) {
        if (connection !== this.connection) return;
        this.current = 'retry-wait';
        this.log.error({ err, retryMs: this.retryMs }, 'registry resync failed; retrying');
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.attempt(connection);
        }, this.retryMs);
        return;
      }
      if (connection === this.connection) this.current = 'synced';
    });
  }
}
