// Sends transfer_progress, which Asterisk turns into a NOTIFY sipfrag.
// A 404 means the transferer's channel is gone (the phone hung up): normal,
// Asterisk has already told the phone 503 by itself, so it is only logged.
// A 5xx, a timeout or a network error is retried: a lost terminating state
// would leave the phone's REFER subscription waiting for 600 s, and sending
// a state twice is harmless (Asterisk ignores anything after a terminating
// one, and a second 100 Trying changes nothing for the phone).
import { isAriError } from '../ari/errors.js';
import { withRetries } from '../ari/retry.js';
import type { TransferProgressState } from '../ari/models.js';
import type { AriRestClient } from '../ari/rest-client.js';
import type { StepJournal } from './journal.js';

/** `no-refer`: a transfer started through the API, which no phone follows. */
export type ProgressResult = 'sent' | 'channel-gone' | 'failed' | 'no-refer';

export const SIPFRAG_OF: Record<TransferProgressState, number> = {
  channel_progress: 100,
  channel_answered: 200,
  channel_unavailable: 503,
  channel_declined: 603,
};

export async function sendProgress(
  rest: Pick<AriRestClient, 'transferProgress'>,
  journal: StepJournal,
  channelId: string,
  state: TransferProgressState,
): Promise<ProgressResult> {
  try {
    await withRetries(
      () => rest.transferProgress(channelId, state),
      (err, attempt, retryInMs) => journal.log.warn({ err, state, attempt, retryInMs }, 'transfer progress failed; retrying'),
    );
    journal.info('progress', { state, sipfrag: SIPFRAG_OF[state] }, 'transfer progress sent');
    return 'sent';
  } catch (err) {
    if (isAriError(err, 404)) {
      journal.info('progress', { state, sent: false }, 'transfer progress not sent: the transferer channel is already gone');
      return 'channel-gone';
    }
    journal.error('progress', { err, state, sent: false }, 'transfer progress failed');
    return 'failed';
  }
}
