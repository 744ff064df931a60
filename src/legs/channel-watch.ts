// Tells waiting code when channels go away (hangup requested, left Stasis,
// destroyed), whichever of those events comes first.
import type { AriEvent } from '../ari/models.js';

export interface AllEnded {
  ended: Promise<void>;
  /** Already ended: lets a caller check without awaiting. */
  isEnded: boolean;
  /** Counts a channel as ended (it was already gone when watching began). */
  end(channelId: string): void;
  dispose(): void;
}

export class ChannelEndWatch {
  private readonly watchers = new Map<string, Set<() => void>>();

  /** Calls `onEnded` once, when the channel ends. Returns a disposer. */
  watch(channelId: string, onEnded: () => void): () => void {
    let set = this.watchers.get(channelId);
    if (!set) this.watchers.set(channelId, (set = new Set()));
    set.add(onEnded);
    return () => {
      set.delete(onEnded);
      if (set.size === 0 && this.watchers.get(channelId) === set) this.watchers.delete(channelId);
    };
  }

  /** Resolves when every one of the channels has ended; dispose to stop watching. */
  allEnded(channelIds: string[]): AllEnded {
    const remaining = new Set(channelIds);
    let resolve!: () => void;
    const ended = new Promise<void>((r) => (resolve = r));
    const finish = () => {
      result.isEnded = true;
      resolve();
    };
    const end = (id: string) => {
      if (remaining.delete(id) && remaining.size === 0) finish();
    };
    const result: AllEnded = { ended, isEnded: false, end, dispose: () => disposers.forEach((d) => d()) };
    const disposers = channelIds.map((id) => this.watch(id, () => end(id)));
    if (remaining.size === 0) finish();
    return result;
  }

  /**
   * After a resync: channels watched but no longer in Asterisk ended while
   * the events socket was down, so their end events were lost.
   */
  endMissing(present: ReadonlySet<string>): void {
    for (const [id, set] of [...this.watchers]) {
      if (present.has(id)) continue;
      this.watchers.delete(id);
      for (const fn of set) fn();
    }
  }

  onEvent(event: AriEvent): void {
    if (event.type !== 'ChannelHangupRequest' && event.type !== 'StasisEnd' && event.type !== 'ChannelDestroyed') return;
    const set = this.watchers.get(event.channel.id);
    if (!set) return;
    this.watchers.delete(event.channel.id);
    for (const fn of set) fn();
  }
}
