// What a transfer may ask of the call router: calls still dialling. Here,
// below both, so that transfer/ never imports calls/.
import type { DialAttempt } from './dialer.js';

export interface PendingDials {
  /** The ringing leg dialled for this not yet connected call, if any. */
  ringingLegOf(channelId: string): string | undefined;
  /** Hands the ringing leg over to a transfer: the router lets go of both. */
  takeOver(channelId: string): DialAttempt | undefined;
}

export const NO_PENDING_DIALS: PendingDials = {
  ringingLegOf: () => undefined,
  takeOver: () => undefined,
};
