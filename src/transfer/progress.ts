// Sends transfer_progress, which Asterisk turns into a NOTIFY sipfrag.
// A 404 means the transferer's channel is gone (the phone hung up): normal,
// Asterisk has already told the phone 503 by itself, so it is only logged.
import { isAriError } from '../ari/errors.js';
import type { TransferProgressState } from '../ari/models.js';
import type { AriRestClient } from '../ari/rest-client.js';
import type { Logger } from '../logger.js';

export type ProgressResult = 'sent' | 'channel-gone' | 'failed';

export const SIPFRAG_OF: Record<TransferProgressState, number> = {
  channel_progress: 100,
  channel_answered: 200,
  channel_unavailable: 503,
  channel_declined: 603,
};

export async function sendProgress(
  rest: Pick<AriRestClient, 'transferProgress'>,
  log: Logger,
  channelId: string,
  state: TransferProgressState,
): Promise<ProgressResult> {
  try {
    await rest.transferProgress(channelId, state);
    log.info({ step: 'progress', state, sipfrag: SIPFRAG_OF[state] }, 'transfer progress sent');
    return 'sent';
  } catch (err) {
    if (isAriError(err, 404)) {
      log.info({ step: 'progress', state, sent: false }, 'transfer progress not sent: the transferer channel is already gone');
      return 'channel-gone';
    }
    log.error({ step: 'progress', err, state, sent: false }, 'transfer progress failed');
    return 'failed';
  }
}
