import { expect } from 'vitest';
import { AriError } from '../../src/ari/errors.js';

/** The AriError `p` rejects with; fails the test if it resolves or rejects with anything else. */
export async function ariFailure(p: Promise<unknown>): Promise<AriError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AriError);
  return err as AriError;
}
