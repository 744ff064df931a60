// What the rest of the service (history, metrics, webhooks) learns about
// transfers: each start, each step (exactly the structured log lines that
// carry a `step`), each end. Observers can never break a transfer.
import type { Logger } from '../logger.js';
import type { TransferKind, TransferResult } from './kinds.js';

export interface TransferStart {
  transferId: string;
  kind: TransferKind;
  /** A phone's REFER, or POST /transfers. */
  origin: 'refer' | 'api';
  sourceChannelId: string;
  sourceCallId: string | undefined;
  destination: string | undefined;
  startedAt: string;
}

export interface TransferStep {
  transferId: string;
  at: string;
  step: string;
  level: 'info' | 'warn' | 'error';
  message: string;
  fields: Record<string, unknown>;
}

export interface TransferSummary {
  transferId: string;
  kind: TransferKind;
  sourceChannelId: string;
  destination: string | undefined;
  result: TransferResult;
  reason: string | undefined;
  /** The sipfrag codes the phone was sent, as far as Asterisk accepted them. */
  sipfrags: number[];
  /** The bridges the transfer rearranged. */
  bridgeIds: string[];
  durationMs: number;
}

export interface TransferObserver {
  started?(t: TransferStart): void;
  step?(s: TransferStep): void;
  finished?(s: TransferSummary): void;
}

/** Calls every observer, logging (never throwing) what one of them throws. */
export function notifyAll<K extends keyof TransferObserver>(
  observers: readonly TransferObserver[],
  log: Logger,
  what: K,
  arg: Parameters<NonNullable<TransferObserver[K]>>[0],
): void {
  for (const o of observers) {
    try {
      (o[what] as ((a: typeof arg) => void) | undefined)?.(arg);
    } catch (err) {
      log.error({ err, observer: what }, 'a transfer observer failed');
    }
  }
}
