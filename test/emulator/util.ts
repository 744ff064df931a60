// Small helpers shared by the emulator modules: Asterisk timestamps, hangup
// causes, caller id parsing, the error type REST handlers throw, and a timer
// scheduler that can be cleared when the emulator closes.

import { STATUS_CODES } from 'node:http';

/** Asterisk's ARI timestamp format, e.g. `2026-11-21T12:47:51.700+0000` (traces). We always use UTC. */
export function asteriskTimestamp(date: Date = new Date()): string {
  return date.toISOString().replace('Z', '+0000');
}

/** 8-digit lowercase hex suffix of channel names, `PJSIP/alice-0000000a` (traces). */
export function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** Texts of Asterisk's ast_cause2str() for the causes the emulator produces. */
const CAUSE_TEXT: Record<number, string> = {
  0: 'Unknown',
  1: 'Unallocated (unassigned) number',
  3: 'No route to destination',
  16: 'Normal Clearing',
  17: 'User busy',
  18: 'No user responding',
  19: 'User alerting, no answer',
  21: 'Call Rejected',
  26: 'Answered elsewhere',
  28: 'Invalid number format',
  31: 'Normal, unspecified',
  34: 'Circuit/channel congestion',
  38: 'Network out of order',
  58: 'Bearer capability not available',
  127: 'Interworking, unspecified',
};

export function causeText(cause: number): string {
  return CAUSE_TEXT[cause] ?? 'Unknown';
}

/** `DELETE /channels/{id}?reason=` values and the causes Asterisk maps them to (resource_channels.c). */
export const HANGUP_REASONS: Record<string, number> = {
  normal: 16,
  busy: 17,
  congestion: 34,
  no_answer: 19,
  timeout: 18,
  rejected: 21,
  unallocated: 1,
  normal_unspecified: 31,
  number_incomplete: 28,
  codec_mismatch: 58,
  interworking: 127,
  failure: 38,
  answered_elsewhere: 26,
};

/**
 * Rough equivalent of ast_callerid_parse(): `"Name" <number>` → both parts;
 * without angle brackets a phone-number-looking string is the number, anything
 * else is the name.
 */
export function parseCallerId(input: string): { name: string; number: string } {
  const m = /^\s*(.*?)\s*<([^>]*)>\s*$/.exec(input);
  if (m) {
    const name = (m[1] ?? '').replace(/^"(.*)"$/, '$1').trim();
    return { name, number: (m[2] ?? '').trim() };
  }
  const s = input.trim();
  if (/^[0-9+*#()\-\s.]+$/.test(s)) return { name: '', number: s };
  return { name: s.replace(/^"(.*)"$/, '$1'), number: '' };
}

/**
 * An ARI error response. `body` defaults to Asterisk's `{"message": ...}`;
 * ast_ari_response_alloc_failed() answers `{"error":"Allocation failed"}` instead.
 */
export class AriError extends Error {
  readonly status: number;
  readonly body: Record<string, unknown>;
  constructor(status: number, message: string, body?: Record<string, unknown>) {
    super(`${status} ${message}`);
    this.name = 'AriError';
    this.status = status;
    this.body = body ?? { message };
  }
  static allocationFailed(): AriError {
    return new AriError(500, 'Allocation failed', { error: 'Allocation failed' });
  }
}

export function reasonPhrase(status: number): string {
  return STATUS_CODES[status] ?? 'Error';
}

/** setTimeout wrapper whose pending timers can all be cancelled (emulator close). */
export class Scheduler {
  private readonly timers = new Set<NodeJS.Timeout>();

  after(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      try {
        fn();
      } catch (err) {
        // A scenario step failing must not crash the test process; surface it.
        console.error('[ari-emulator] scheduled step failed:', err);
      }
    }, Math.max(0, ms));
    this.timers.add(t);
    return t;
  }

  /** Like after(), but does not keep the Node process alive (long SIP timers such as REFER expiry). */
  afterUnref(ms: number, fn: () => void): NodeJS.Timeout {
    const t = this.after(ms, fn);
    t.unref();
    return t;
  }

  cancel(t: NodeJS.Timeout | undefined): void {
    if (!t) return;
    clearTimeout(t);
    this.timers.delete(t);
  }

  clearAll(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

/** Polls `predicate` every few ms; rejects with `describe()` in the message on timeout. */
export function pollUntil(
  predicate: () => boolean,
  timeoutMs: number,
  what: string,
  describe?: () => string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = (): void => {
      let ok = false;
      try {
        ok = predicate();
      } catch {
        ok = false;
      }
      if (ok) {
        resolve();
        return;
      }
      if (Date.now() - started >= timeoutMs) {
        const extra = describe ? `; ${describe()}` : '';
        reject(new Error(`ARI emulator: timed out after ${timeoutMs} ms waiting for ${what}${extra}`));
        return;
      }
      setTimeout(tick, 5);
    };
    tick();
  });
}
