// The one way the service changes what a channel hears (music on hold,
// ringback): whoever asks (hold music on a routed call, a transfer), the
// requests on one channel reach Asterisk in the order they were made. Hold
// music runs off the event queue, so without this a transfer's "stop the
// music" could overtake the hold's "start" and leave the music playing.
import type { AriRestClient } from '../ari/rest-client.js';

export type SoundRest = Pick<AriRestClient, 'startMoh' | 'stopMoh' | 'startRinging' | 'stopRinging'>;

export class ChannelSound implements SoundRest {
  /** Per channel: the last request asked for, settled or not. */
  private readonly last = new Map<string, Promise<void>>();

  constructor(private readonly rest: SoundRest) {}

  startMoh(channelId: string, mohClass?: string): Promise<void> {
    return this.inOrder(channelId, () => this.rest.startMoh(channelId, mohClass));
  }

  stopMoh(channelId: string): Promise<void> {
    return this.inOrder(channelId, () => this.rest.stopMoh(channelId));
  }

  startRinging(channelId: string): Promise<void> {
    return this.inOrder(channelId, () => this.rest.startRinging(channelId));
  }

  stopRinging(channelId: string): Promise<void> {
    return this.inOrder(channelId, () => this.rest.stopRinging(channelId));
  }

  /** Channels with a request still on its way (for tests and leak checks). */
  get busyChannels(): number {
    return this.last.size;
  }

  // After the previous request on the channel, whatever its outcome.
  private inOrder(channelId: string, request: () => Promise<void>): Promise<void> {
    const run = (this.last.get(channelId) ?? Promise.resolve()).then(request);
    const settled = run.catch(() => undefined);
    this.last.set(channelId, settled);
    void settled.then(() => {
      if (this.last.get(channelId) === settled) this.last.delete(channelId);
    });
    return run;
  }
}
