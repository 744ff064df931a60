// A coded error for every failed ARI request, keeping what Asterisk said.
// A 404 from transfer_progress (the phone hung up) must be told apart from a
// 409 (channel left Stasis) or a 400 (bad state), so the status is kept as is.

export type AriErrorKind = 'http' | 'timeout' | 'network';

export class AriError extends Error {
  override readonly name = 'AriError';

  constructor(
    /** The ARI operation, e.g. `channels.transferProgress`. */
    readonly operation: string,
    readonly kind: AriErrorKind,
    /** HTTP status for `http` errors. */
    readonly status: number | undefined,
    /** Asterisk's `message` from the error body, or the transport's reason. */
    readonly detail: string,
  ) {
    super(`${operation} failed: ${kind === 'http' ? `${status} ${detail}` : `${kind}: ${detail}`}`);
  }

  get isNotFound(): boolean {
    return this.status === 404;
  }
}

export function isAriError(err: unknown, status?: number): err is AriError {
  return err instanceof AriError && (status === undefined || err.status === status);
}
