// What GET /transfers shows: the transfers in flight, step by step, and the
// last N finished ones. Memory is bounded: finished transfers are kept in a
// ring of `size` entries, and each transfer keeps at most `maxSteps` steps.
import type { TransferKind, TransferResult } from './kinds.js';
import type { TransferObserver, TransferStart, TransferStep, TransferSummary } from './observer.js';

export interface HistoryOptions {
  /** Finished transfers kept (TRANSFER_HISTORY_SIZE); 0 keeps none. */
  size: number;
  /** Steps kept per transfer; later ones are only counted. */
  maxSteps?: number;
}

export interface StepView {
  at: string;
  step: string;
  level: TransferStep['level'];
  message: string;
  fields: Record<string, unknown>;
}

export interface InFlightView {
  transferId: string;
  kind: TransferKind;
  /** A phone's REFER, or POST /transfers. */
  origin: TransferStart['origin'];
  sourceChannelId: string;
  sourceCallId: string | null;
  destination: string | null;
  startedAt: string;
  /** The sipfrags sent so far, from the `progress` steps. */
  sipfrags: number[];
  steps: StepView[];
  /** Steps beyond `maxSteps`, not kept. */
  droppedSteps: number;
}

export interface FinishedView extends Omit<InFlightView, 'sipfrags'> {
  finishedAt: string;
  result: TransferResult;
  reason: string | null;
  /** As the phone was sent them (the summary's). */
  sipfrags: number[];
  bridgeIds: string[];
  durationMs: number;
}

interface Entry {
  start: Pick<InFlightView, 'transferId' | 'kind' | 'origin' | 'sourceChannelId' | 'sourceCallId' | 'destination' | 'startedAt'>;
  sipfrags: number[];
  steps: StepView[];
  droppedSteps: number;
}

export const DEFAULT_MAX_STEPS = 200;

/** What a watcher of the history (the live page's feed) hears, as it is recorded. */
export type HistoryEvent =
  | { type: 'started'; transfer: InFlightView }
  | { type: 'step'; transferId: string; step: StepView }
  | { type: 'finished'; transfer: FinishedView };

export type HistoryListener = (event: HistoryEvent) => void;

export class TransferHistory implements TransferObserver {
  readonly size: number;
  private readonly maxSteps: number;
  private readonly active = new Map<string, Entry>();
  /** Ring buffer of finished transfers; `next` is where the next one goes. */
  private readonly ring: (FinishedView | undefined)[];
  private next = 0;
  private count = 0;
  private readonly listeners = new Set<HistoryListener>();

  constructor(options: HistoryOptions) {
    if (!Number.isInteger(options.size) || options.size < 0) throw new RangeError(`history size must be a whole number >= 0, not ${options.size}`);
    this.size = options.size;
    this.maxSteps = options.maxSteps ?? DEFAULT_MAX_STEPS;
    this.ring = new Array<FinishedView | undefined>(options.size);
  }

  started(t: TransferStart): void {
    const start = {
      transferId: t.transferId,
      kind: t.kind,
      origin: t.origin,
      sourceChannelId: t.sourceChannelId,
      sourceCallId: t.sourceCallId ?? null,
      destination: t.destination ?? null,
      startedAt: t.startedAt,
    };
    this.active.set(t.transferId, { start, sipfrags: [], steps: [], droppedSteps: 0 });
    if (this.listeners.size) this.emit({ type: 'started', transfer: { ...start, sipfrags: [], steps: [], droppedSteps: 0 } });
  }

  /** Calls `listener` with each start, kept step and end from now on; returns the unsubscribe. */
  subscribe(listener: HistoryListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: HistoryEvent): void {
    // A listener's failure must not stop the others, nor the transfer being recorded.
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        this.listeners.delete(listener);
      }
    }
  }

  step(s: TransferStep): void {
    const entry = this.active.get(s.transferId);
    if (!entry) return;
    // Counted from every step, kept or not: a long transfer still shows what the phone heard.
    if (s.step === 'progress' && s.fields.sent !== false && typeof s.fields.sipfrag === 'number') entry.sipfrags.push(s.fields.sipfrag);
    if (entry.steps.length >= this.maxSteps) {
      entry.droppedSteps++;
      return;
    }
    const view: StepView = { at: s.at, step: s.step, level: s.level, message: s.message, fields: s.fields };
    entry.steps.push(view);
    if (this.listeners.size) this.emit({ type: 'step', transferId: s.transferId, step: copyStep(view) });
  }

  private record(summary: TransferSummary): void {
    const entry = this.active.get(summary.transferId);
    this.active.delete(summary.transferId);
    if (this.size === 0 && !this.listeners.size) return;
    const start = entry?.start;
    const view: FinishedView = {
      transferId: summary.transferId,
      kind: summary.kind,
      origin: start?.origin ?? 'refer',
      sourceChannelId: summary.sourceChannelId,
      sourceCallId: start?.sourceCallId ?? null,
      destination: summary.destination ?? null,
      startedAt: start?.startedAt ?? new Date(Date.now() - summary.durationMs).toISOString(),
      finishedAt: new Date().toISOString(),
      result: summary.result,
      reason: summary.reason ?? null,
      sipfrags: [...summary.sipfrags],
      bridgeIds: [...summary.bridgeIds],
      durationMs: summary.durationMs,
      steps: entry?.steps ?? [],
      droppedSteps: entry?.droppedSteps ?? 0,
    };
    if (this.listeners.size) this.emit({ type: 'finished', transfer: { ...view, steps: view.steps.map(copyStep) } });
    if (this.size === 0) return;
    this.ring[this.next] = view;
    this.next = (this.next + 1) % this.size;
    this.count = Math.min(this.count + 1, this.size);
  }

  /** Transfers in flight, oldest first. */
  inFlight(): InFlightView[] {
    return [...this.active.values()].map((e) => ({
      ...e.start,
      sipfrags: [...e.sipfrags],
      steps: e.steps.map(copyStep),
      droppedSteps: e.droppedSteps,
    }));
  }

  /** One transfer, in flight or among the finished ones kept. */
  get(transferId: string): InFlightView | FinishedView | undefined {
    const e = this.active.get(transferId);
    if (e) return { ...e.start, sipfrags: [...e.sipfrags], steps: e.steps.map(copyStep), droppedSteps: e.droppedSteps };
    const view = this.ring.find((v) => v?.transferId === transferId);
    return view && { ...view, sipfrags: [...view.sipfrags], bridgeIds: [...view.bridgeIds], steps: view.steps.map(copyStep) };
  }

  /**
   * Without an argument: the finished transfers kept, most recent first.
   * With a summary: the observer callback recording that transfer's end.
   */
  finished(): FinishedView[];
  finished(summary: TransferSummary): void;
  finished(summary?: TransferSummary): FinishedView[] | void {
    if (summary) return this.record(summary);
    return this.latestFinished(this.count);
  }

  /** The `limit` most recent finished transfers, most recent first (copies only those). */
  latestFinished(limit: number): FinishedView[] {
    const out: FinishedView[] = [];
    for (let i = 1; i <= Math.min(limit, this.count); i++) {
      const view = this.ring[(this.next - i + this.size) % this.size]!;
      out.push({ ...view, sipfrags: [...view.sipfrags], bridgeIds: [...view.bridgeIds], steps: view.steps.map(copyStep) });
    }
    return out;
  }
}

function copyStep(s: StepView): StepView {
  return { ...s, fields: { ...s.fields } };
}
