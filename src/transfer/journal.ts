// A transfer's story as typed events: each step (requested, progress, dial,
// move, hangup, ...) is logged with its `step` field and handed to the
// observers (history, metrics, webhooks), from one call. Plain diagnostics
// go to `log` and reach no observer.
import type { Logger } from '../logger.js';
import type { TransferStep } from './observer.js';

export type StepLevel = TransferStep['level'];
export type StepEvent = Omit<TransferStep, 'transferId' | 'at'>;

export class StepJournal {
  constructor(
    readonly log: Logger,
    private readonly onStep: (s: StepEvent) => void,
  ) {}

  info(step: string, fields: Record<string, unknown>, message: string): void {
    this.record('info', step, fields, message);
  }

  warn(step: string, fields: Record<string, unknown>, message: string): void {
    this.record('warn', step, fields, message);
  }

  error(step: string, fields: Record<string, unknown>, message: string): void {
    this.record('error', step, fields, message);
  }

  private record(level: StepLevel, step: string, fields: Record<string, unknown>, message: string): void {
    this.log[level]({ step, ...fields }, message);
    this.onStep({ step, level, message, fields: safeFields(fields) });
  }
}

// Errors are reduced to their message: observers may serialise steps.
function safeFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = v instanceof Error ? v.message : v;
  return out;
}
