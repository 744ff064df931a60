// The ARI events WebSocket, kept open forever.
// Asterisk does not queue events for a disconnected application, so every
// reconnect is announced (onOpen) and the owner resyncs its state then.
import WebSocket from 'ws';
import type { Logger } from '../logger.js';
import { backoffDelay } from './backoff.js';
import type { AriEvent } from './models.js';
import { parseEventFrame } from './parse-event.js';
import type { WebSocketRest } from './ws-rest.js';

export interface EventStreamOptions {
  url: string;
  username: string;
  password: string;
  app: string;
  subscribeAll: boolean;
  reconnectInitialMs?: number;
  reconnectMaxMs: number;
  /** A connection that answers no ping within this time is considered dead. */
  pingIntervalMs?: number;
  /** Carries REST requests on each connection once Asterisk answers there. */
  rest?: WebSocketRest;
  logger: Logger;
}

export interface EventStreamHandlers {
  onEvent(event: AriEvent): void;
  /** Called on every (re)connection, before any event from it. */
  onOpen(): void;
  onClose(): void;
}

/** What the service uses of the events connection (tests substitute it). */
export type EventStream = Pick<AriEventStream, 'connected' | 'endpoint' | 'start' | 'stop'>;

export class AriEventStream {
  private socket: WebSocket | undefined;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private stopped = true;
  private readonly log: Logger;

  constructor(
    private readonly options: EventStreamOptions,
    private readonly handlers: EventStreamHandlers,
  ) {
    this.log = options.logger.child({ component: 'ari-events' });
  }

  get connected(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /** The URL without credentials, safe to log. */
  get endpoint(): string {
    const u = new URL(`${this.options.url}/ari/events`);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    u.searchParams.set('app', this.options.app);
    u.searchParams.set('subscribeAll', String(this.options.subscribeAll));
    return u.toString();
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    // REST requests sent on the socket get their answers before it closes.
    await this.options.rest?.drain();
    const socket = this.socket;
    this.socket = undefined;
    this.options.rest?.detach();
    if (!socket || socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
      else socket.close(1000, 'shutting down');
      // A peer that never answers the close handshake must not hold us up.
      setTimeout(() => {
        socket.terminate();
        resolve();
      }, 1000).unref();
    });
  }

  private connect(): void {
    const auth = Buffer.from(`${this.options.username}:${this.options.password}`).toString('base64');
    const socket = new WebSocket(this.endpoint, { headers: { Authorization: `Basic ${auth}` }, handshakeTimeout: 10_000 });
    this.socket = socket;
    let opened = false;

    socket.on('open', () => {
      opened = true;
      this.attempt = 0;
      this.log.info({ url: this.endpoint }, 'ARI events connected');
      this.startHeartbeat(socket);
      this.options.rest?.attach(socket);
      this.handlers.onOpen();
    });
    socket.on('message', (data, isBinary) => {
      if (isBinary) {
        this.log.warn('dropped a binary frame on the ARI events socket');
        return;
      }
      this.dispatch(data.toString());
    });
    socket.on('unexpected-response', (_req, res) => {
      // e.g. 401 for bad credentials: worth saying plainly, then retry.
      this.log.error({ status: res.statusCode, url: this.endpoint }, 'ARI refused the events connection');
      socket.terminate();
    });
    socket.on('error', (err) => {
      this.log.warn({ err: { message: err.message, code: (err as NodeJS.ErrnoException).code } }, 'ARI events socket error');
    });
    socket.on('close', (code) => {
      clearInterval(this.pingTimer);
      if (this.socket === socket) {
        this.socket = undefined;
        this.options.rest?.detach();
      }
      if (opened) {
        this.log.warn({ code }, 'ARI events disconnected; events until reconnection are lost');
        this.handlers.onClose();
      }
      if (!this.stopped) this.scheduleReconnect();
    });
  }

  private dispatch(text: string): void {
    const parsed = parseEventFrame(text);
    if (parsed.kind === 'malformed') {
      this.log.warn({ reason: parsed.reason, frame: text.slice(0, 500) }, 'dropped a malformed ARI event');
      return;
    }
    if (parsed.kind === 'rest-response') {
      this.options.rest?.receive(parsed.frame);
      return;
    }
    if (parsed.kind === 'unknown') {
      this.log.debug({ type: parsed.type }, 'ignored an ARI event type this service does not use');
      return;
    }
    try {
      this.handlers.onEvent(parsed.event);
    } catch (err) {
      // A bug in one handler must not take the connection down.
      this.log.error({ err, type: parsed.event.type }, 'event handler failed');
    }
  }

  private scheduleReconnect(): void {
    const delay = backoffDelay(this.attempt++, {
      initialMs: this.options.reconnectInitialMs ?? 250,
      maxMs: this.options.reconnectMaxMs,
    });
    this.log.info({ attempt: this.attempt, delayMs: delay }, 'reconnecting to ARI events');
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  private startHeartbeat(socket: WebSocket): void {
    const interval = this.options.pingIntervalMs ?? 15_000;
    let alive = true;
    socket.on('pong', () => (alive = true));
    this.pingTimer = setInterval(() => {
      if (!alive) {
        this.log.warn('ARI events socket answered no ping; dropping it');
        socket.terminate();
        return;
      }
      alive = false;
      socket.ping();
    }, interval);
  }
}
