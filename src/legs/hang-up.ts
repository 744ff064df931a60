// Hanging up a leg as part of a transfer: skipped when the phone already
// did (the registry saw the hangup); a 404 (gone meanwhile) is normal; a
// 5xx, timeout or network error is retried, since a leg left up can keep a
// phone in a call it believes is over.
import { isAriError } from '../ari/errors.js';
import { withRetries } from '../ari/retry.js';
import type { AriRestClient } from '../ari/rest-client.js';
import type { Logger } from '../logger.js';
import type { CallRegistry } from '../registry/call-registry.js';

export interface HangUpContext {
  rest: Pick<AriRestClient, 'hangup'>;
  registry: CallRegistry;
  log: Logger;
}

/** Resolves true once the leg is gone or going, false if it could not be hung up. */
export async function hangUpLeg(channelId: string, { rest, registry, log }: HangUpContext): Promise<boolean> {
  if ((await registry.store.getChannel(channelId))?.hangingUp) {
    log.info({ step: 'hangup', channelId }, 'leg already hung up by the phone');
    return true;
  }
  try {
    await withRetries(() => rest.hangup(channelId, 'normal'));
    log.info({ step: 'hangup', channelId }, 'leg hung up');
    return true;
  } catch (err) {
    if (isAriError(err, 404)) {
      log.info({ step: 'hangup', channelId }, 'leg already gone');
      return true;
    }
    log.error({ step: 'hangup', err, channelId }, 'could not hang up the leg');
    return false;
  }
}
