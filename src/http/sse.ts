// Server-sent events to any number of browsers: one named event to all of
// them at once, a comment now and then so that proxies keep idle streams
// open, and no unbounded memory: a client that does not read (its socket
// buffer past MAX_BUFFERED) is cut off; its EventSource reconnects and starts
// again from a fresh snapshot.
import type { ServerResponse } from 'node:http';

export const MAX_BUFFERED = 1024 * 1024;
const HEARTBEAT_MS = 15_000;
/** How long a browser waits before reconnecting (EventSource's `retry`). */
const RETRY_MS = 2_000;

export class SseHub {
  private readonly clients = new Set<ServerResponse>();
  private heartbeat: NodeJS.Timeout | undefined;

  get size(): number {
    return this.clients.size;
  }

  /** Starts the stream on `res` and sends it `first` (its snapshot) before any broadcast. */
  add(res: ServerResponse, first: { event: string; data: unknown }): void {
    // The browser left while its snapshot was being read.
    if (res.destroyed) return;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // nginx and the like would otherwise hold the events back.
      'x-accel-buffering': 'no',
    });
    res.write(`retry: ${RETRY_MS}\n\n`);
    this.write(res, frame(first.event, first.data));
    this.clients.add(res);
    res.on('close', () => this.remove(res));
    this.heartbeat ??= setInterval(() => this.writeAll(': keep-alive\n\n'), HEARTBEAT_MS).unref();
  }

  broadcast(event: string, data: unknown): void {
    if (this.clients.size) this.writeAll(frame(event, data));
  }

  /** Ends every stream (the server is closing: it would otherwise wait for them). */
  closeAll(): void {
    for (const res of [...this.clients]) {
      this.remove(res);
      res.end();
    }
  }

  private writeAll(text: string): void {
    for (const res of [...this.clients]) this.write(res, text);
  }

  private write(res: ServerResponse, text: string): void {
    if (res.destroyed || res.writableLength > MAX_BUFFERED) {
      this.remove(res);
      res.destroy();
      return;
    }
    res.write(text);
  }

  private remove(res: ServerResponse): void {
    this.clients.delete(res);
    if (this.clients.size === 0 && this.heartbeat) {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
    }
  }
}

/** One SSE frame; JSON has no raw newlines, so `data:` is one line. */
function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
