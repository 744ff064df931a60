// The transfer observer that tells the outside world about transfers:
//
//   TRANSFER_EVENT_HOOK  <- transfer.started, then every transfer.step
//   TRANSFER_ACTION_HOOK <- transfer.finished, once per transfer
//
// Observer calls only serialise the body and queue it: a transfer never
// waits for a receiver. Each hook has its own bounded queue (a slow event
// receiver does not hold back the action hook), delivering one transfer's
// messages in order and different transfers' concurrently. Every attempt is
// signed (see signing.ts); its delivery id stays the same across retries.
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import axios from 'axios';
import type { WebhookConfig } from '../config.js';
import type { Logger } from '../logger.js';
import type { TransferObserver, TransferStart, TransferStep, TransferSummary } from '../transfer/observer.js';
import { DeliveryQueue, type AttemptOutcome, type QueueStats } from './delivery-queue.js';
import { ATTEMPT_HEADER, DELIVERY_HEADER, SIGNATURE_HEADER, signatureHeader, TIMESTAMP_HEADER } from './signing.js';

export type WebhookType = 'transfer.started' | 'transfer.step' | 'transfer.finished';
export type HookName = 'event' | 'action';

export interface WebhookNotifierOptions {
  /** Clock, in milliseconds since the epoch (signature timestamps, finishedAt). Default Date.now. */
  now?: () => number;
  /** First retry delay; doubles per retry, with jitter. Default 500. */
  retryBaseMs?: number;
  /** Cap on one retry delay. Default 60 000. */
  maxRetryDelayMs?: number;
  /** Deliveries waiting per hook at most; when full the oldest is dropped. Default 10 000. */
  maxQueued?: number;
  /** Deliveries in flight per hook at most (each for a different transfer). Default 4. */
  concurrency?: number;
}

interface Delivery {
  deliveryId: string;
  transferId: string;
  type: WebhookType;
  /** The exact bytes sent and signed. */
  body: string;
}

interface Hook {
  name: HookName;
  url: string;
  /** Origin and path only: the URL may carry user:password or a token in its query. */
  forLogs: string;
  queue: DeliveryQueue<Delivery>;
}

/** Transfers whose event sequence numbers are remembered, at most. */
const MAX_TRACKED_TRANSFERS = 10_000;

export class WebhookNotifier implements TransferObserver {
  private readonly eventHook: Hook | undefined;
  private readonly actionHook: Hook | undefined;
  private readonly secret: string;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  /** transferId -> number of the last message sent to the event hook. */
  private readonly seqs = new Map<string, number>();

  constructor(config: WebhookConfig, logger: Logger, options: WebhookNotifierOptions = {}) {
    const { eventHook, actionHook } = config;
    if ((eventHook || actionHook) && !config.secret) {
      throw new Error('WEBHOOK_SECRET is required when TRANSFER_EVENT_HOOK or TRANSFER_ACTION_HOOK is set');
    }
    this.secret = config.secret ?? '';
    this.timeoutMs = config.timeoutMs;
    this.now = options.now ?? Date.now;
    const log = logger.child({ component: 'webhooks' });
    const make = (name: HookName, url: string | undefined): Hook | undefined => {
      if (!url) return undefined;
      const parsed = new URL(url);
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
        throw new Error(`the ${name} hook must be an http:// or https:// URL`);
      }
      const forLogs = parsed.origin + parsed.pathname;
      const hook: Hook = {
        name,
        url,
        forLogs,
        queue: new DeliveryQueue<Delivery>({
          label: `${name} webhook`,
          logger: log,
          keyOf: (d) => d.transferId,
          describe: (d) => ({ hook: name, url: forLogs, deliveryId: d.deliveryId, transferId: d.transferId, type: d.type }),
          send: (d, attempt, signal) => this.post(hook, d, attempt, signal),
          retries: config.retries,
          retryBaseMs: options.retryBaseMs ?? 500,
          ...(options.maxRetryDelayMs !== undefined ? { maxRetryDelayMs: options.maxRetryDelayMs } : {}),
          ...(options.maxQueued !== undefined ? { maxQueued: options.maxQueued } : {}),
          ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
        }),
      };
      return hook;
    };
    this.eventHook = make('event', eventHook);
    this.actionHook = make('action', actionHook);
  }

  /** Whether any hook is configured (when not, every method is a no-op). */
  get enabled(): boolean {
    return this.eventHook !== undefined || this.actionHook !== undefined;
  }

  started(t: TransferStart): void {
    if (!this.eventHook) return;
    this.trackSeq(t.transferId);
    this.enqueue(this.eventHook, 'transfer.started', t.transferId, {
      seq: this.nextSeq(t.transferId),
      kind: t.kind,
      origin: t.origin,
      sourceChannelId: t.sourceChannelId,
      sourceCallId: t.sourceCallId ?? null,
      destination: t.destination ?? null,
      startedAt: t.startedAt,
    });
  }

  step(s: TransferStep): void {
    if (!this.eventHook) return;
    this.enqueue(this.eventHook, 'transfer.step', s.transferId, {
      seq: this.nextSeq(s.transferId),
      step: s.step,
      level: s.level,
      message: s.message,
      fields: s.fields,
      at: s.at,
    });
  }

  finished(s: TransferSummary): void {
    this.seqs.delete(s.transferId);
    if (!this.actionHook) return;
    this.enqueue(this.actionHook, 'transfer.finished', s.transferId, {
      kind: s.kind,
      destination: s.destination ?? null,
      result: s.result,
      reason: s.reason ?? null,
      sipfrags: s.sipfrags,
      sourceChannelId: s.sourceChannelId,
      bridgeIds: s.bridgeIds,
      durationMs: s.durationMs,
      finishedAt: new Date(this.now()).toISOString(),
    });
  }

  /** Per hook: waiting, in flight, delivered, failed, dropped. */
  stats(): { event?: QueueStats; action?: QueueStats } {
    return {
      ...(this.eventHook ? { event: this.eventHook.queue.stats() } : {}),
      ...(this.actionHook ? { action: this.actionHook.queue.stats() } : {}),
    };
  }

  /**
   * Waits up to `graceMs` for queued deliveries (both hooks at once), then
   * drops the rest, logging how many per hook. Later events are refused.
   */
  async close(graceMs: number): Promise<void> {
    await Promise.all([this.eventHook?.queue.close(graceMs), this.actionHook?.queue.close(graceMs)]);
  }

  private enqueue(hook: Hook, type: WebhookType, transferId: string, rest: Record<string, unknown>): void {
    hook.queue.push({ deliveryId: randomUUID(), transferId, type, body: serialise({ type, transferId, ...rest }) });
  }

  private trackSeq(transferId: string): void {
    this.seqs.delete(transferId);
    this.seqs.set(transferId, 0);
    // A transfer that never finishes must not be remembered forever.
    if (this.seqs.size > MAX_TRACKED_TRANSFERS) {
      const oldest = this.seqs.keys().next().value;
      if (oldest !== undefined) this.seqs.delete(oldest);
    }
  }

  private nextSeq(transferId: string): number {
    const seq = (this.seqs.get(transferId) ?? 0) + 1;
    if (this.seqs.has(transferId)) this.seqs.set(transferId, seq);
    return seq;
  }

  private async post(hook: Hook, d: Delivery, attempt: number, closing: AbortSignal): Promise<AttemptOutcome> {
    // Signed per attempt: a retry minutes later still passes the receiver's replay window.
    const timestamp = Math.floor(this.now() / 1000);
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'ari-transfer-webhooks',
      [TIMESTAMP_HEADER]: String(timestamp),
      [SIGNATURE_HEADER]: signatureHeader(this.secret, timestamp, d.body),
      [DELIVERY_HEADER]: d.deliveryId,
      [ATTEMPT_HEADER]: String(attempt),
    };
    // axios's timeout is an idle timeout on the socket; the deadline bounds
    // the whole exchange, up to the answer's status line.
    const deadline = AbortSignal.timeout(this.timeoutMs);
    try {
      const res = await axios.post<Readable>(hook.url, d.body, {
        headers,
        timeout: this.timeoutMs,
        signal: AbortSignal.any([deadline, closing]),
        validateStatus: () => true,
        // Only the status matters: the body is never read, and sent as is.
        responseType: 'stream',
        transformRequest: [(data: unknown) => data],
        // A redirected POST turns into a GET elsewhere: the URL is wrong.
        maxRedirects: 0,
      });
      // Not read: a large or trickling answer must not hold the socket.
      res.data?.destroy?.();
      return classify(res.status);
    } catch (err) {
      // Only the code survives: axios errors carry the request config, and
      // with it the URL's credentials and the signature.
      const code = axios.isAxiosError(err) ? err.code : undefined;
      if (closing.aborted) return { ok: false, retryable: false, reason: 'shutting down' };
      if (deadline.aborted || code === 'ECONNABORTED' || code === 'ETIMEDOUT') {
        return { ok: false, retryable: true, reason: `no answer within ${this.timeoutMs} ms`, code: 'TIMEOUT' };
      }
      return { ok: false, retryable: true, reason: `request failed (${code ?? 'unknown error'})`, code: code ?? 'unknown' };
    }
  }
}

function classify(status: number): AttemptOutcome {
  if (status >= 200 && status <= 299) return { ok: true, status };
  // 408 and 429 say "not now"; 5xx is the receiver's own failure.
  if (status === 408 || status === 429 || status >= 500) {
    return { ok: false, retryable: true, reason: `receiver answered ${status}`, status };
  }
  const hint =
    status >= 300 && status <= 399
      ? 'redirects are not followed: set the hook to the final URL'
      : 'a configuration problem: check the hook URL, its credentials, and the receiver\'s WEBHOOK_SECRET';
  return { ok: false, retryable: false, reason: `receiver answered ${status} (${hint})`, status };
}

// Step fields come from log lines: a BigInt or a cycle must not lose the
// whole message, only the field.
function serialise(body: Record<string, unknown>): string {
  const bigints = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);
  try {
    return JSON.stringify(body, bigints);
  } catch {
    return JSON.stringify({ ...body, fields: { unserialisable: true } }, bigints);
  }
}
