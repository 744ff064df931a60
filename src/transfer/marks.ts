// Writes and clears a transfer's marks in Asterisk (recovery.ts says what
// they hold). Never on a transfer's critical path: a mark is written while
// the transfer goes on, and a failed write only costs recoverability, so it
// is logged, not retried. Writes to one channel stay in order. They go the
// way of the transfer's own requests (the events socket, where Asterisk
// carries them out in order before the next step): written over HTTP beside
// an attended transfer's move they delayed it by about 3 ms on a real
// Asterisk (BENCHMARKS.md), more than their own turn on the socket costs.
import { isAriError } from '../ari/errors.js';
import type { AriRestClient } from '../ari/rest-client.js';
import type { Logger } from '../logger.js';

export class ChannelMarks {
  private last = new Map<string, Promise<void>>();

  constructor(
    private readonly rest: Pick<AriRestClient, 'setChannelVariable'>,
    private readonly log: Logger,
  ) {}

  /** Sets (or, with '', clears) `name` on the channel after any earlier write to it. */
  write(channelId: string, name: string, value: string): void {
    const previous = this.last.get(channelId) ?? Promise.resolve();
    const next = previous.then(() =>
      this.rest.setChannelVariable(channelId, name, value).catch((err: unknown) => {
        if (isAriError(err, 404)) return; // gone: so is its mark
        this.log.warn({ err, channelId, variable: name }, 'could not write the transfer mark; a restart now could not recover this transfer');
      }),
    );
    this.last.set(channelId, next);
  }

  /** Resolves once every write so far is done. */
  async settled(): Promise<void> {
    await Promise.all(this.last.values());
  }
}
