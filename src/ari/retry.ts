// Retrying an ARI request that failed for a reason that may pass: a 5xx, a
// timeout, a network error. 4xx answers are final (404: already gone).
import { isAriError } from './errors.js';

/** Delays before each retry; three retries within about 2 s. */
export const ARI_RETRY_DELAYS_MS: readonly number[] = [100, 400, 1500];

export function isRetryable(err: unknown): boolean {
  return isAriError(err) && (err.kind !== 'http' || (err.status ?? 0) >= 500);
}

/**
 * Runs `call` until it succeeds, fails for good, or the delays run out;
 * `onRetry` hears about each failure that will be retried.
 */
export async function withRetries<T>(
  call: () => Promise<T>,
  onRetry: (err: unknown, attempt: number, delayMs: number) => void = () => {},
  delaysMs: readonly number[] = ARI_RETRY_DELAYS_MS,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      const delay = delaysMs[attempt];
      if (!isRetryable(err) || delay === undefined) throw err;
      onRetry(err, attempt + 1, delay);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
