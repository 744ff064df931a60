// Prometheus metrics, on a registry of their own (never prom-client's
// global one), served by GET /metrics. Transfers are counted as they finish
// (Metrics is a TransferObserver); ARI requests through the REST client's
// observer hook; the registry and in-flight gauges are read at scrape time.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AriRequestRecord } from './ari/rest-client.js';
import type { RegistryCounts } from './registry/types.js';
import type { TransferKind, TransferResult } from './transfer/kinds.js';
import type { TransferObserver, TransferSummary } from './transfer/observer.js';

/** With HA_MODE=active-standby: this instance's part in the pair. */
export interface HaSources {
  active(): boolean;
  /** Milliseconds since the lease was last taken or renewed; undefined unless active. */
  leaseAgeMs(): number | undefined;
}

/** What the gauges read at scrape time. */
export interface MetricSources {
  registryCounts(): Promise<RegistryCounts>;
  transfersInFlight(): number;
  /** With REGISTRY=redis: whether this node's entries in Redis are current. */
  sharedRegistryUp?(): boolean | undefined;
}

const KINDS: readonly TransferKind[] = ['attended', 'blind'];
const RESULTS: readonly TransferResult[] = ['completed', 'rejected', 'failed'];

// A transfer takes from a few ms (rejected) to TRANSFER_TIMEOUT (30 s by default).
const TRANSFER_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60];
// An ARI request takes a few ms; ARI_REQUEST_TIMEOUT_MS is 5 s by default.
const ARI_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Metrics implements TransferObserver {
  readonly registry = new Registry();
  private sources: MetricSources | undefined;
  private pendingCounts: Promise<RegistryCounts | undefined> | undefined;

  private readonly transfers = new Counter({
    name: 'ari_transfer_transfers_total',
    help: 'Transfers finished, by kind (attended, blind) and result (completed, rejected, failed).',
    labelNames: ['kind', 'result'] as const,
    registers: [this.registry],
  });
  private readonly transferDuration = new Histogram({
    name: 'ari_transfer_transfer_duration_seconds',
    help: 'Time from the REFER (ChannelTransfer) to the end of the transfer.',
    labelNames: ['kind', 'result'] as const,
    buckets: TRANSFER_BUCKETS,
    registers: [this.registry],
  });
  private readonly ariRequests = new Counter({
    name: 'ari_transfer_ari_requests_total',
    help: 'ARI REST requests, by operation and status (the HTTP status, or timeout / network).',
    labelNames: ['operation', 'status'] as const,
    registers: [this.registry],
  });
  private readonly ariRequestDuration = new Histogram({
    name: 'ari_transfer_ari_request_duration_seconds',
    help: 'Duration of ARI REST requests, by operation.',
    labelNames: ['operation'] as const,
    buckets: ARI_BUCKETS,
    registers: [this.registry],
  });
  private readonly failovers = new Counter({
    name: 'ari_transfer_ha_failovers_total',
    help: 'With HA_MODE=active-standby: times this instance took the lease over from another one.',
    registers: [this.registry],
  });
  private ha: HaSources | undefined;
  private readonly reconnects = new Counter({
    name: 'ari_transfer_websocket_reconnects_total',
    help: 'ARI events WebSocket connections after the first one.',
    registers: [this.registry],
  });

  constructor() {
    const counts = () => this.registryCounts();
    new Gauge({
      name: 'ari_transfer_registry_channels',
      help: 'Channels in the call registry.',
      registers: [this.registry],
      async collect() {
        const c = await counts();
        if (c) this.set(c.channels);
      },
    });
    new Gauge({
      name: 'ari_transfer_registry_bridges',
      help: 'Bridges in the call registry.',
      registers: [this.registry],
      async collect() {
        const c = await counts();
        if (c) this.set(c.bridges);
      },
    });
    const sources = () => this.sources;
    new Gauge({
      name: 'ari_transfer_transfers_in_flight',
      help: 'Transfers in progress.',
      registers: [this.registry],
      collect() {
        const s = sources();
        if (s) this.set(s.transfersInFlight());
      },
    });
    new Gauge({
      name: 'ari_transfer_shared_registry_up',
      help: 'With REGISTRY=redis: 1 while this node is published to Redis and current, else 0 (absent with the memory registry).',
      registers: [this.registry],
      collect() {
        const up = sources()?.sharedRegistryUp?.();
        if (up !== undefined) this.set(up ? 1 : 0);
      },
    });
    const ha = () => this.ha;
    new Gauge({
      name: 'ari_transfer_ha_active',
      help: 'With HA_MODE=active-standby: 1 on the instance serving the node, 0 on a standby.',
      registers: [this.registry],
      collect() {
        const h = ha();
        if (h) this.set(h.active() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'ari_transfer_ha_lease_age_seconds',
      help: 'With HA_MODE=active-standby, on the active instance: time since it last renewed its lease (HA_LEASE_MS/3 when healthy).',
      registers: [this.registry],
      collect() {
        const age = ha()?.leaseAgeMs();
        if (age !== undefined) this.set(age / 1000);
      },
    });
    // Every combination exists from the start, so that rate() sees the first one.
    for (const kind of KINDS) for (const result of RESULTS) this.transfers.inc({ kind, result }, 0);
    const shared = processMetrics();
    for (const { name } of shared.getMetricsAsArray()) {
      const metric = shared.getSingleMetric(name);
      if (metric) this.registry.registerMetric(metric);
    }
  }

  /** Where the gauges read the registry and the transfers in flight. */
  track(sources: MetricSources): void {
    this.sources = sources;
  }

  finished(s: TransferSummary): void {
    this.transfers.labels(s.kind, s.result).inc();
    this.transferDuration.labels(s.kind, s.result).observe(s.durationMs / 1000);
  }

  /** The REST client's observer hook. */
  ariRequest(r: AriRequestRecord): void {
    this.ariRequests.labels(r.operation, String(r.outcome)).inc();
    this.ariRequestDuration.labels(r.operation).observe(r.durationMs / 1000);
  }

  /** Where the HA gauges read this instance's role. */
  trackHa(sources: HaSources): void {
    this.ha = sources;
  }

  tookOver(): void {
    this.failovers.inc();
  }

  websocketReconnected(): void {
    this.reconnects.inc();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  // Both registry gauges are collected in the same scrape: one read serves both.
  private registryCounts(): Promise<RegistryCounts | undefined> {
    const sources = this.sources;
    if (!sources) return Promise.resolve(undefined);
    this.pendingCounts ??= sources
      .registryCounts()
      .catch(() => undefined) // A store that cannot answer leaves the last values.
      .finally(() => (this.pendingCounts = undefined));
    return this.pendingCounts;
  }
}

// prom-client's default metrics describe the process, and collecting them
// starts observers that are never stopped: one set per process, shared by
// every Metrics registry.
let processRegistry: Registry | undefined;
const EVENT_LOOP_SAMPLE_MS = 100;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    // The event-loop monitor samples every 100 ms, not prom-client's 10: at 10
    // it alone cost an idle service about 10 ms of CPU per second (measured).
    collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  }
  return processRegistry;
}
