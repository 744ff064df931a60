// A TCP proxy on 127.0.0.1 between the service and ARI (a real Asterisk or the emulator)
// (REST and the events WebSocket alike), for tests that take the network
// away: every proxied connection can be cut at once, either as both ends see
// it (a reset: Asterisk notices and deactivates the application) or only on
// the service's side (a black hole: Asterisk keeps its end open, sends its
// events into it, and notices nothing), and new connections can be refused
// for a while. One request can also be held back on its way to Asterisk
// (`hold`), to stop a transfer in the state that request would end.
import { connect, createServer, type Server, type Socket } from 'node:net';

interface Pair {
  client: Socket;
  upstream: Socket;
  /** Upstream kept open after its client was cut: what it sends is dropped. */
  blackHoled: boolean;
  /** Held back (`hold`): what the client sent from the matching request on, never forwarded. */
  held: Buffer[] | undefined;
}

interface Hold {
  pattern: RegExp;
  caught(firstLine: string): void;
}

export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  private refusing = false;
  /** Armed holds, each waiting for its first match. */
  private holds: Hold[] = [];
  /** Connections accepted since the start, refused ones included. */
  accepted = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** Listens on a free loopback port and forwards to `target`. */
  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    let proxy!: TcpProxy;
    const server = createServer((client) => proxy.accept(client, target));
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
    proxy = new TcpProxy(server, (server.address() as { port: number }).port);
    return proxy;
  }

  /** The proxy as an http:// base URL (ARI_URL). */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Connections open on both sides right now. */
  get open(): number {
    return [...this.pairs].filter((p) => !p.blackHoled).length;
  }

  /**
   * Cuts every proxied connection. 'both': both ends are destroyed.
   * 'client-side': only the service's end is; Asterisk's end stays open and
   * whatever Asterisk sends on it is read and dropped.
   */
  cut(how: 'both' | 'client-side'): void {
    for (const pair of this.pairs) {
      if (pair.blackHoled) continue;
      pair.client.destroy();
      if (how === 'both') pair.upstream.destroy();
      else pair.blackHoled = true;
    }
  }

  /**
   * Holds back, from the first chunk the service sends whose text matches
   * `pattern` (latin1; e.g. /POST \/ari\/bridges\/b1\/addChannel/), every
   * byte that connection sends from then on: the request never reaches
   * Asterisk (the bytes before the match, the end of an earlier request, do).
   * Asterisk's answers on it, and every other connection, keep flowing.
   * Nothing is released: the connection ends when the service does, or
   * `cut`/`close`. One-shot; resolves with the held request's first line
   * once it holds it. The pattern must fall within one chunk: a request's
   * first line does (Node writes an HTTP request's head in one go).
   */
  hold(pattern: RegExp): Promise<string> {
    return new Promise((resolve) => this.holds.push({ pattern, caught: resolve }));
  }

  /** Bytes held back on the connections still open. */
  get heldBytes(): number {
    let n = 0;
    for (const pair of this.pairs) for (const b of pair.held ?? []) n += b.length;
    return n;
  }

  /** While true, new connections are accepted and closed at once. */
  refuse(on: boolean): void {
    this.refusing = on;
  }

  /** Stops listening and destroys every connection, black-holed ones too. */
  async close(): Promise<void> {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    this.pairs.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, target: { host: string; port: number }): void {
    this.accepted++;
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    const pair: Pair = { client, upstream, blackHoled: false, held: undefined };
    this.pairs.add(pair);
    client.on('data', (d: Buffer) => {
      if (pair.blackHoled) return;
      if (pair.held) {
        pair.held.push(d);
        return;
      }
      // latin1: one character per byte, so a match's index is its offset.
      const text = d.toString('latin1');
      const hold = this.holds.find((h) => text.search(h.pattern) >= 0);
      if (!hold) {
        upstream.write(d);
        return;
      }
      this.holds = this.holds.filter((h) => h !== hold);
      const at = text.search(hold.pattern);
      if (at > 0) upstream.write(d.subarray(0, at));
      pair.held = [d.subarray(at)];
      hold.caught(text.slice(at).split('\r\n', 1)[0]!);
    });
    upstream.on('data', (d) => {
      if (!pair.blackHoled && !client.destroyed) client.write(d);
    });
    client.on('close', () => {
      // A black-holed upstream outlives its client.
      if (pair.blackHoled) return;
      upstream.destroy();
      this.pairs.delete(pair);
    });
    upstream.on('close', () => {
      client.destroy();
      this.pairs.delete(pair);
    });
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  }
}
