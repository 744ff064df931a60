// Reconnect delays: exponential growth with "full jitter" (a random delay
// between 0 and the capped exponential), so that many services restarted
// together do not hammer Asterisk in lockstep.

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  random?: () => number;
}

export function backoffDelay(attempt: number, { initialMs, maxMs, random = Math.random }: BackoffOptions): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  // Never 0: a floor of a tenth of the ceiling keeps a tight loop impossible.
  return Math.round(ceiling / 10 + random() * ceiling * 0.9);
}
