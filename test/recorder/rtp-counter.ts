// Counts the RTP packets Asterisk sends to a phone's audio port (the port the
// phone's SDP offers, `-key rtp_port`), to tell whether Asterisk plays
// something (music on hold) to that phone and when.

import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';

export class RtpCounter {
  /** Arrival times (ms, performance.now()) of every packet. */
  readonly arrivals: number[] = [];
  private constructor(
    readonly port: number,
    private readonly socket: Socket,
  ) {
    socket.on('message', () => this.arrivals.push(performance.now()));
  }

  static listen(port: number): Promise<RtpCounter> {
    const socket = createSocket('udp4');
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, '127.0.0.1', () => resolve(new RtpCounter(port, socket)));
    });
  }

  /** Packets that arrived between two performance.now() marks. */
  between(from: number, to: number): number {
    return this.arrivals.filter((t) => t >= from && t < to).length;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
