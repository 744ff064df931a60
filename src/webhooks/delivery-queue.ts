// A bounded, retrying delivery queue, independent of what is delivered.
//
// - `push` only records the item and returns: sending starts on a later
//   turn of the event loop, so whoever pushes is never delayed by it.
// - Items with the same key are delivered one after the other, in push
//   order: the next starts when the previous one is delivered or given up.
//   Different keys are delivered concurrently (up to `concurrency`), so one
//   key stuck in retries does not hold the others back.
// - At most `maxQueued` items wait; pushing one more drops the oldest
//   waiting item, with a warning (throttled) and a counter.
// - A failed attempt is retried when the sender says it may be, after an
//   exponential backoff with jitter, up to `retries` times.
// - `close(graceMs)` waits up to graceMs for the queue to empty, then drops
//   what is left (aborting attempts in flight) and says how many.
import type { Logger } from '../logger.js';

export type AttemptOutcome =
  | { ok: true; status?: number }
  | {
      ok: false;
      /** May the same item be tried again (network error, timeout, 5xx)? */
      retryable: boolean;
      /** Why, for the log line: never a secret. */
      reason: string;
      status?: number;
      code?: string;
    };

export interface DeliveryQueueOptions<T> {
  /** Names the queue in log lines, e.g. 'webhook'. */
  label: string;
  logger: Logger;
  /** Items with the same key are delivered in order, one at a time. */
  keyOf: (item: T) => string;
  /** Fields identifying an item in log lines; must hold no secret. */
  describe: (item: T) => Record<string, unknown>;
  /** One attempt (1, 2, ...). Should resolve, not throw; must honour `signal`. */
  send: (item: T, attempt: number, signal: AbortSignal) => Promise<AttemptOutcome>;
  /** Retries after the first attempt. */
  retries: number;
  /** First retry delay; doubles for each further retry (then jittered). */
  retryBaseMs: number;
  /** Cap on one retry delay. Default 60 000. */
  maxRetryDelayMs?: number;
  /** Waiting items kept at most. Default 10 000. */
  maxQueued?: number;
  /** Items in flight (each of a different key) at most. Default 4. */
  concurrency?: number;
  /** At most one 'queue full' warning per interval. Default 5 000. */
  dropLogIntervalMs?: number;
  /** For tests: a number in [0, 1). Default Math.random. */
  random?: () => number;
}

export interface QueueStats {
  /** Waiting, not yet in flight. */
  queued: number;
  inFlight: number;
  delivered: number;
  /** Given up: out of retries, or refused for good by the receiver. */
  failed: number;
  /** Dropped unsent: the queue was full, or the shutdown grace ran out. */
  dropped: number;
}

interface Entry<T> {
  item: T;
  key: string;
}

interface Lane<T> {
  waiting: Entry<T>[];
  busy: boolean;
}

export const DEFAULT_MAX_QUEUED = 10_000;
export const DEFAULT_CONCURRENCY = 4;
export const DEFAULT_MAX_RETRY_DELAY_MS = 60_000;

export class DeliveryQueue<T> {
  /** Every waiting entry, oldest first (the drop order). */
  private readonly waiting = new Set<Entry<T>>();
  private readonly lanes = new Map<string, Lane<T>>();
  /** Keys of lanes not busy and with waiting entries, in the order they became so. */
  private readonly ready = new Set<string>();
  private active = 0;
  private delivered = 0;
  private failed = 0;
  private dropped = 0;
  private pumpScheduled = false;
  private readonly abort = new AbortController();
  private closed = false;
  private closing: Promise<void> | undefined;
  private idleWaiters: (() => void)[] = [];
  private lastDropLogAt = -Infinity;
  private unloggedDrops = 0;
  private dropLogTimer: NodeJS.Timeout | undefined;

  private readonly maxQueued: number;
  private readonly concurrency: number;
  private readonly maxRetryDelayMs: number;
  private readonly dropLogIntervalMs: number;
  private readonly random: () => number;

  constructor(private readonly opts: DeliveryQueueOptions<T>) {
    this.maxQueued = Math.max(1, opts.maxQueued ?? DEFAULT_MAX_QUEUED);
    this.concurrency = Math.max(1, opts.concurrency ?? DEFAULT_CONCURRENCY);
    this.maxRetryDelayMs = opts.maxRetryDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS;
    this.dropLogIntervalMs = opts.dropLogIntervalMs ?? 5_000;
    this.random = opts.random ?? Math.random;
  }

  /** Queues `item`; never throws, never waits. False when closed. */
  push(item: T): boolean {
    if (this.closed) {
      this.dropped++;
      this.opts.logger.warn(this.opts.describe(item), `${this.opts.label} delivery dropped: shutting down`);
      return false;
    }
    if (this.waiting.size >= this.maxQueued) this.dropOldest();
    const key = this.opts.keyOf(item);
    const entry: Entry<T> = { item, key };
    this.waiting.add(entry);
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { waiting: [], busy: false };
      this.lanes.set(key, lane);
    }
    lane.waiting.push(entry);
    if (!lane.busy) this.ready.add(key);
    this.schedulePump();
    return true;
  }

  stats(): QueueStats {
    return {
      queued: this.waiting.size,
      inFlight: this.active,
      delivered: this.delivered,
      failed: this.failed,
      dropped: this.dropped,
    };
  }

  /**
   * Waits up to `graceMs` for every queued item to be delivered (or given
   * up), then drops the rest, aborting attempts in flight, with one log line
   * naming how many. Items pushed meanwhile are still taken; after, refused.
   */
  close(graceMs: number): Promise<void> {
    this.closing ??= this.shutdown(graceMs);
    return this.closing;
  }

  private async shutdown(graceMs: number): Promise<void> {
    const drained = await this.whenIdle(graceMs);
    this.closed = true;
    if (!drained) {
      const left = this.waiting.size + this.active;
      this.dropped += left;
      this.waiting.clear();
      this.lanes.clear();
      this.ready.clear();
      this.abort.abort();
      this.opts.logger.warn(
        { dropped: left, graceMs },
        `${this.opts.label}: ${left} deliveries still pending after the ${graceMs} ms shutdown grace: dropped`,
      );
      await this.whenIdle(Infinity);
    }
    this.flushDropLog();
  }

  /** Resolves true once nothing waits or is in flight, false after `ms`. */
  private whenIdle(ms: number): Promise<boolean> {
    if (this.isIdle()) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(done);
      if (Number.isFinite(ms)) {
        timer = setTimeout(() => {
          this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
          resolve(false);
        }, ms);
      }
    });
  }

  private isIdle(): boolean {
    return this.waiting.size === 0 && this.active === 0;
  }

  private checkIdle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private dropOldest(): void {
    const oldest = this.waiting.values().next().value;
    if (!oldest) return;
    this.waiting.delete(oldest);
    const lane = this.lanes.get(oldest.key);
    if (lane) {
      // The oldest waiting entry overall is the oldest of its lane.
      const i = lane.waiting.indexOf(oldest);
      if (i >= 0) lane.waiting.splice(i, 1);
      if (lane.waiting.length === 0 && !lane.busy) {
        this.lanes.delete(oldest.key);
        this.ready.delete(oldest.key);
      }
    }
    this.dropped++;
    this.logDrop(oldest.item);
  }

  // A receiver that is down under load would otherwise add a warning per
  // event: the first drop is logged at once, later ones summed per interval.
  private logDrop(item: T): void {
    const now = performance.now();
    if (now - this.lastDropLogAt >= this.dropLogIntervalMs) {
      this.lastDropLogAt = now;
      this.opts.logger.warn(
        { ...this.opts.describe(item), maxQueued: this.maxQueued, droppedTotal: this.dropped },
        `${this.opts.label} queue full (${this.maxQueued} waiting): dropped the oldest delivery`,
      );
      return;
    }
    this.unloggedDrops++;
    if (!this.dropLogTimer) {
      this.dropLogTimer = setTimeout(() => this.flushDropLog(), this.lastDropLogAt + this.dropLogIntervalMs - now);
      this.dropLogTimer.unref();
    }
  }

  private flushDropLog(): void {
    clearTimeout(this.dropLogTimer);
    this.dropLogTimer = undefined;
    if (this.unloggedDrops === 0) return;
    const n = this.unloggedDrops;
    this.unloggedDrops = 0;
    this.lastDropLogAt = performance.now();
    this.opts.logger.warn(
      { dropped: n, maxQueued: this.maxQueued, droppedTotal: this.dropped },
      `${this.opts.label} queue full (${this.maxQueued} waiting): dropped ${n} more of the oldest deliveries`,
    );
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.active < this.concurrency && !this.abort.signal.aborted) {
      const key = this.ready.values().next().value;
      if (key === undefined) return;
      this.ready.delete(key);
      const lane = this.lanes.get(key);
      const entry = lane?.waiting.shift();
      if (!lane || !entry) continue;
      this.waiting.delete(entry);
      lane.busy = true;
      this.active++;
      void this.run(entry.item).finally(() => {
        this.active--;
        lane.busy = false;
        if (this.lanes.get(key) === lane) {
          if (lane.waiting.length > 0) this.ready.add(key);
          else this.lanes.delete(key);
        }
        this.pump();
        this.checkIdle();
      });
    }
  }

  private async run(item: T): Promise<void> {
    const { opts } = this;
    const signal = this.abort.signal;
    const maxAttempts = opts.retries + 1;
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      let outcome: AttemptOutcome;
      try {
        outcome = await opts.send(item, attempt, signal);
      } catch (err) {
        outcome = { ok: false, retryable: true, reason: 'sending failed', code: errorCode(err) };
      }
      // Dropped by close(): counted and logged there.
      if (signal.aborted) return;
      const durationMs = Math.round(performance.now() - started);
      if (outcome.ok) {
        this.delivered++;
        opts.logger.debug({ ...opts.describe(item), attempt, status: outcome.status, durationMs }, `${opts.label} delivered`);
        return;
      }
      const fields = {
        ...opts.describe(item),
        attempt,
        maxAttempts,
        ...(outcome.status !== undefined ? { status: outcome.status } : {}),
        ...(outcome.code !== undefined ? { code: outcome.code } : {}),
        reason: outcome.reason,
        durationMs,
      };
      if (!outcome.retryable) {
        this.failed++;
        opts.logger.error(fields, `${opts.label} delivery failed and is not retried: ${outcome.reason}`);
        return;
      }
      if (attempt >= maxAttempts) {
        this.failed++;
        opts.logger.error(fields, `${opts.label} delivery given up after ${attempt} attempts: ${outcome.reason}`);
        return;
      }
      const retryInMs = this.backoff(attempt);
      opts.logger.warn({ ...fields, retryInMs }, `${opts.label} delivery attempt ${attempt} failed: ${outcome.reason}; retrying`);
      if (!(await sleep(retryInMs, signal))) return;
    }
  }

  /** Delay before retry number `n` (1, 2, ...): base·2^(n-1), capped, jittered into [½, 1]×. */
  private backoff(n: number): number {
    const full = Math.min(this.maxRetryDelayMs, this.opts.retryBaseMs * 2 ** (n - 1));
    return Math.round(full / 2 + (this.random() * full) / 2);
  }
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'unknown';
}
