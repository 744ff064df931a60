// What the transferees hear while a new leg rings for them: ringback
// (HOLD_MODE=ring) or music on hold (moh), started when the leg is placed
// and stopped, retried, once it has answered or failed.
import { isAriError } from '../ari/errors.js';
import { withRetries } from '../ari/retry.js';
import type { AriRestClient } from '../ari/rest-client.js';
import type { HoldMode } from '../config.js';
import type { StepJournal } from './journal.js';
import type { CallRegistry } from '../registry/call-registry.js';

export interface HoldContext {
  rest: Pick<AriRestClient, 'startRinging' | 'stopRinging' | 'startMoh' | 'stopMoh'>;
  registry: CallRegistry;
  journal: StepJournal;
  holdMode: HoldMode;
  mohClass: string;
}

export async function startHold(transfereeIds: string[], { rest, registry, journal, holdMode, mohClass }: HoldContext): Promise<void> {
  await Promise.all(
    transfereeIds.map(async (id) => {
      try {
        if (holdMode === 'moh') {
          await rest.startMoh(id, mohClass);
          await registry.store.patchChannel(id, { mohByService: true });
        } else {
          // Music from a hold before the REFER would drown the ringback.
          if ((await registry.store.getChannel(id))?.mohByService) {
            await rest.stopMoh(id);
            await registry.store.patchChannel(id, { mohByService: false });
          }
          await rest.startRinging(id);
        }
        journal.info('hold', { channelId: id, mode: holdMode }, 'transferee hears the target ringing');
      } catch (err) {
        journal.warn('hold', { err, channelId: id }, 'could not play ringback or music to the transferee');
      }
    }),
  );
}

// Retried: a transferee whose ringback or music is never stopped hears it
// on top of the call it is back in, or of the new one.
export async function stopHold(transfereeIds: string[], { rest, registry, journal, holdMode }: HoldContext): Promise<void> {
  await Promise.all(
    transfereeIds.map(async (id) => {
      const record = await registry.store.getChannel(id);
      if (!record || record.hangingUp) return;
      try {
        if (holdMode === 'ring') await withRetries(() => rest.stopRinging(id));
        if (record.mohByService) await withRetries(() => rest.stopMoh(id));
        await registry.store.patchChannel(id, { mohByService: false });
      } catch (err) {
        if (!isAriError(err, 404)) journal.warn('unhold', { err, channelId: id }, 'could not stop ringback or music');
      }
    }),
  );
}

// Retried: music left playing would go on over the new call.
export async function stopMusic(channelId: string, { rest, registry, journal }: Omit<HoldContext, 'holdMode' | 'mohClass'>): Promise<void> {
  try {
    await withRetries(() => rest.stopMoh(channelId));
    journal.info('stop-moh', { channelId }, 'music on hold stopped on the transferee');
  } catch (err) {
    if (!isAriError(err, 404)) journal.warn('stop-moh', { err, channelId }, 'could not stop music on hold');
  }
  await registry.store.patchChannel(channelId, { mohByService: false });
}
