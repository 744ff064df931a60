// The seeded order mode: per REST request, the response goes out before or after the
// events the request causes (a real Asterisk does both). Response first means: event
// delivery is held from just before the request is carried out until 2-5 ms after the
// response has been written (EventHub.holdDelivery keeps each socket in order).

import { seededRandom } from '../helpers/seeded-random.js';
import type { EventHub } from './events.js';

export class ResponseOrder {
  private readonly next: () => number;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    seed: number,
    private readonly hub: EventHub,
  ) {
    this.next = seededRandom(seed);
  }

  /** Draws the order for one request: a release function when it is "response first", else undefined. */
  draw(): (() => void) | undefined {
    return this.next() < 0.5 ? undefined : this.hub.holdDelivery();
  }

  /**
   * Lets the held events go 2-5 ms (seeded) after the response has been handed to the
   * socket (`written`: an HTTP response finished, a WebSocket frame sent): a real
   * Asterisk's gap is smaller, but a client on a busy machine needs a few ms to read the
   * response before the events really come second.
   */
  releaseAfter(written: Promise<void>, release: () => void): void {
    const ms = 2 + Math.floor(this.next() * 4);
    void written.then(() => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        release();
      }, ms);
      this.timers.add(t);
    });
  }

  /** The emulator closes: held events are dropped with the sockets. */
  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
