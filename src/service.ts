// Wires the ARI connection, the registry and the transfer handler together.
// Events are applied strictly in arrival order through one queue; a resync
// after every (re)connection goes through the same queue, so events that
// arrive while it runs are applied on top of the fresh snapshot
// (registry/resync-loop.ts: one retry chain per connection).
import { AriEventStream, type EventStream, type EventStreamHandlers, type EventStreamOptions } from './ari/event-stream.js';
import type { AriEvent } from './ari/models.js';
import { AriRestClient } from './ari/rest-client.js';
import { WebSocketRest } from './ari/ws-rest.js';
import { ChannelEndWatch } from './legs/channel-watch.js';
import { Dialer } from './legs/dialer.js';
import { HoldMusic } from './calls/hold-music.js';
import { ChannelSound } from './legs/channel-sound.js';
import { CallRouter } from './calls/router.js';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { CallRegistry } from './registry/call-registry.js';
import { openRegistryStore, type OpenedStore } from './registry/open-store.js';
import { ResyncLoop } from './registry/resync-loop.js';
import type { RegistryStore } from './registry/types.js';
import { TransferHistory } from './transfer/history.js';
import { DestinationPolicy } from './transfer/policy.js';
import type { TransferObserver } from './transfer/observer.js';
import { InternodeJoins } from './transfer/internode-join.js';
import { TransferHandler } from './transfer/transfer-handler.js';
import { INTERNODE_ARG, transferOfInternodeExten } from './legs/internode.js';
import { WebhookNotifier } from './webhooks/index.js';

export interface ServiceOptions {
  store?: RegistryStore;
  observers?: TransferObserver[];
  /** Defaults to a new Metrics (its own prom-client registry). */
  metrics?: Metrics;
  /** Defaults to a history of TRANSFER_HISTORY_SIZE finished transfers. */
  history?: TransferHistory;
  /** Defaults to a WebhookNotifier for config.webhooks (a no-op when no hook is set). */
  webhooks?: WebhookNotifier;
  /** Test hook: shorter reconnect delays. */
  reconnectInitialMs?: number;
  /** Test hook: delay before retrying a failed registry resync (default 1 s). */
  resyncRetryMs?: number;
  /** Test hook: the events connection (default: an AriEventStream). */
  eventStream?: (options: EventStreamOptions, handlers: EventStreamHandlers) => EventStream;
}

export class TransferService {
  readonly rest: AriRestClient;
  readonly registry: CallRegistry;
  readonly transfers: TransferHandler;
  readonly dialer: Dialer;
  readonly router: CallRouter;
  readonly metrics: Metrics;
  readonly webhooks: WebhookNotifier;
  readonly history: TransferHistory;
  private readonly hold: HoldMusic | undefined;
  private readonly joins: InternodeJoins;
  private readonly watch = new ChannelEndWatch();
  private readonly events: EventStream;
  private readonly sync: ResyncLoop;
  private readonly opened: OpenedStore | undefined;
  /** The Asterisk node served (ASTERISK_NODE). */
  readonly node: string;
  private readonly log: Logger;
  private queue: Promise<void> = Promise.resolve();
  private connections = 0;
  /** Set by ApplicationReplaced: another client holds the application name. */
  private replaced = false;
  private draining = false;

  constructor(config: Config, logger: Logger, options: ServiceOptions = {}) {
    this.log = logger;
    this.node = config.registry.node;
    const ari = config.ari;
    const metrics = (this.metrics = options.metrics ?? new Metrics());
    this.history = options.history ?? new TransferHistory({ size: config.transferHistorySize });
    const webSocketRest = ari.restTransport === 'websocket' ? new WebSocketRest({ timeoutMs: ari.requestTimeoutMs, logger }) : undefined;
    this.rest = new AriRestClient({
      url: ari.url,
      username: ari.username,
      password: ari.password,
      timeoutMs: ari.requestTimeoutMs,
      observer: (r) => metrics.ariRequest(r),
      ...(webSocketRest ? { webSocket: webSocketRest } : {}),
    });
    this.opened = options.store ? undefined : openRegistryStore(config.registry, logger);
    this.registry = new CallRegistry(options.store ?? this.opened!.store, this.rest, logger, this.opened?.shared);
    this.dialer = new Dialer({ rest: this.rest, app: ari.app, template: config.transfer.dialTemplate, logger });
    const sound = new ChannelSound(this.rest.overHttp());
    const policy = new DestinationPolicy(
      {
        allow: config.transfer.allow,
        deny: config.transfer.deny,
        webhookUrl: config.transfer.policyUrl,
        webhookTimeoutMs: config.transfer.policyTimeoutMs,
      },
      logger,
    );
    this.webhooks = options.webhooks ?? new WebhookNotifier(config.webhooks, logger);
    this.transfers = new TransferHandler({
      rest: this.rest,
      sound,
      registry: this.registry,
      dialer: this.dialer,
      watch: this.watch,
      policy,
      pendingDials: { ringingLegOf: (id) => this.router.ringingLegOf(id), takeOver: (id) => this.router.takeOver(id) },
      transfer: config.transfer,
      mohClass: config.mohClass,
      // Over HTTP: the answer REFER out waits on must not hold up the events socket's requests.
      referOut: this.rest.overHttp(),
      logger,
      observers: [
        this.history,
        this.metrics,
        this.webhooks,
        ...(options.observers ?? []),
        {
          // A transfer may leave a routed call with one party: end it then.
          finished: (summary) =>
            this.enqueue(async () => {
              for (const id of summary.bridgeIds) await this.router.reconcile(id);
            }),
        },
      ],
    });
    this.router = new CallRouter({
      rest: this.rest,
      registry: this.registry,
      dialer: this.dialer,
      transfers: this.transfers,
      routeCalls: config.routing === 'dial',
      app: ari.app,
      timeoutMs: config.routingTimeoutMs,
      logger,
    });
    this.joins = new InternodeJoins({ rest: this.rest, registry: this.registry, logger });
    this.metrics.track({
      registryCounts: () => this.registry.store.counts(),
      transfersInFlight: () => this.transfers.activeCount,
      sharedRegistryUp: () => (this.opened?.shared ? this.opened.shared.state === 'up' : undefined),
    });
    // With ROUTING=none the calls, and what the parties hear, are another application's.
    this.hold = config.routing === 'dial' ? new HoldMusic({ sound, registry: this.registry, mohClass: config.mohClass, logger }) : undefined;
    this.sync = new ResyncLoop({
      resync: () => this.resync(),
      enqueue: (task) => this.enqueue(task),
      ...(options.resyncRetryMs !== undefined ? { retryMs: options.resyncRetryMs } : {}),
      logger,
    });
    const eventStream = options.eventStream ?? ((o, h) => new AriEventStream(o, h));
    this.events = eventStream(
      {
        url: ari.url,
        username: ari.username,
        password: ari.password,
        app: ari.app,
        subscribeAll: ari.subscribeAll,
        reconnectMaxMs: ari.reconnectMaxDelayMs,
        ...(webSocketRest ? { rest: webSocketRest } : {}),
        ...(options.reconnectInitialMs !== undefined ? { reconnectInitialMs: options.reconnectInitialMs } : {}),
        logger,
      },
      {
        onOpen: () => this.onOpen(),
        onClose: () => this.sync.disconnected(),
        onEvent: (event) => this.enqueue(() => this.onEvent(event)),
      },
    );
  }

  /** The events WebSocket is open (whether or not the registry is synced yet). */
  get connected(): boolean {
    return this.events.connected;
  }

  /** Connected to ARI and the registry rebuilt since. */
  get ready(): boolean {
    return this.events.connected && this.sync.state === 'synced' && !this.replaced;
  }

  /** Why the service is not ready (GET /readyz), or undefined when it is. */
  get notReadyReason(): string | undefined {
    if (this.draining) return 'shutting down';
    if (this.replaced) return 'another ARI client took the application over';
    if (!this.events.connected) return 'not connected to the ARI events WebSocket';
    if (this.sync.state === 'retry-wait') return 'registry resync from ARI failed; retrying';
    if (this.sync.state !== 'synced') return 'registry not yet synced from ARI';
    const shared = this.opened?.shared;
    if (shared && shared.state !== 'up') return 'the shared registry (Redis) is unreachable or not yet published: cross-node look-ups fail';
    return undefined;
  }

  start(): void {
    this.log.info({ url: this.events.endpoint }, 'starting: connecting to ARI');
    this.opened?.connect();
    this.events.start();
  }

  /**
   * Graceful stop: REFERs arriving from now on get 503; transfers in flight
   * get `graceMs` to finish (the events socket stays open for them); then
   * the socket closes.
   */
  async stop(graceMs = 0): Promise<void> {
    this.draining = true;
    this.log.info({ graceMs, inFlight: this.transfers.activeCount }, 'stopping: no new transfers');
    const unfinished = await this.transfers.drain(graceMs);
    this.sync.stop();
    await this.events.stop();
    await this.queue;
    await this.opened?.close();
    // The last transfers' results get their own grace period to be delivered.
    await this.webhooks.close(graceMs);
    this.log.info({ unfinished }, 'stopped');
  }

  /** A real (re)connection of the events socket: the only place reconnects are counted. */
  private onOpen(): void {
    if (this.connections++ > 0) this.metrics.websocketReconnected();
    this.replaced = false;
    this.sync.connected();
  }

  /** One resync attempt; ResyncLoop retries it when it throws. */
  private async resync(): Promise<void> {
    const { channels, bridges } = await this.registry.resync();
    // Ends and answers whose events were lost while disconnected: tell who waits on them.
    const present = new Set((await this.registry.store.listChannels()).map((c) => c.id));
    this.watch.endMissing(present);
    this.dialer.reconcile(channels);
    this.router.adoptBridges(bridges);
    // Transfers a previous process left in the middle (it was killed or crashed) go on.
    this.transfers.recover(channels, bridges);
  }

  private async onEvent(event: AriEvent): Promise<void> {
    if (event.type === 'ApplicationReplaced') {
      // Taking the name back would make two instances steal it from each
      // other forever; staying unready and saying so is the safe choice.
      this.replaced = true;
      this.log.error(
        { app: event.application },
        'another ARI client connected with the same application name: this service receives no more events and handles no transfers; give each instance its own ARI_APP or stop the other client',
      );
      return;
    }
    // The router needs the bridge a channel was in before the registry forgets it.
    const bridgeBefore =
      event.type === 'ChannelHangupRequest' || event.type === 'StasisEnd'
        ? (await this.registry.store.getChannel(event.channel.id))?.bridgeId
        : undefined;
    await this.registry.apply(event);
    // A call from another node, for a transfer there: off the event queue (REST round trips).
    if (event.type === 'StasisStart' && event.args[0] === INTERNODE_ARG && transferOfInternodeExten(event.channel.dialplan?.exten)) {
      void this.joins.accept(event.channel).catch((err: unknown) => this.log.error({ err, channelId: event.channel.id }, 'joining a call from another node failed'));
    }
    this.dialer.onEvent(event);
    this.watch.onEvent(event);
    await this.router.onEvent(event, bridgeBefore);
    await this.hold?.onEvent(event);
    if (event.type === 'ChannelTransfer') await this.transfers.onChannelTransfer(event);
  }

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task).catch((err: unknown) => this.log.error({ err }, 'event processing failed'));
  }
}
