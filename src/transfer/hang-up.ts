// Hanging up a leg as part of a transfer: skipped when the phone already
// did (the registry saw the hangup), and a 404 (gone meanwhile) is normal.
import { isAriError } from '../ari/errors.js';
import type { AriRestClient } from '../ari/rest-client.js';
import type { Logger } from '../logger.js';
import type { CallRegistry } from '../registry/call-registry.js';

export interface HangUpContext {
  rest: Pick<AriRestClient, 'hangup'>;
  registry: CallRegistry;
  log: Logger;
}

export async function hangUpLeg(channelId: string, { rest, registry, log }: HangUpContext): Promise<void> {
  if ((await registry.store.getChannel(channelId))?.hangingUp) {
    log.info({ step: 'hangup', channelId }, 'leg already hung up by the phone');
    return;
  }
  try {
    await rest.hangup(channelId, 'normal');
    log.info({ step: 'hangup', channelId }, 'leg hung up');
  } catch (err) {
    if (isAriError(err, 404)) log.info({ step: 'hangup', channelId }, 'leg already gone');
    else log.error({ step: 'hangup', err, channelId }, 'could not hang up the leg');
  }
}
