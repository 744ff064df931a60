// Hanging up a leg: skipped when the phone already did (the registry saw
// the hangup); a 404 (gone meanwhile) is normal; a 5xx, timeout or network
// error is retried, since a leg left up can keep a phone in a call it
// believes is over. The caller tells the story (a transfer's step).
import { isAriError } from '../ari/errors.js';
import { withRetries } from '../ari/retry.js';
import type { AriRestClient } from '../ari/rest-client.js';
import type { CallRegistry } from '../registry/call-registry.js';

export interface HangUpContext {
  rest: Pick<AriRestClient, 'hangup'>;
  registry: CallRegistry;
}

export type HangUpResult =
  | { gone: true; how: 'hung up' | 'already hung up by the phone' | 'already gone' }
  | { gone: false; err: unknown };

/** `reason`: ARI's name of the cause the phone is told (its BYE's Reason header). */
export async function hangUpLeg(channelId: string, { rest, registry }: HangUpContext, reason = 'normal'): Promise<HangUpResult> {
  if ((await registry.store.getChannel(channelId))?.hangingUp) return { gone: true, how: 'already hung up by the phone' };
  try {
    await withRetries(() => rest.hangup(channelId, reason));
    return { gone: true, how: 'hung up' };
  } catch (err) {
    if (isAriError(err, 404)) return { gone: true, how: 'already gone' };
    return { gone: false, err };
  }
}
