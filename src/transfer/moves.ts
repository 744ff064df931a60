// Bridge moves of an attended transfer, undone in reverse order if one
// fails, so that a failed transfer leaves every party where it was.
// Joins inhibit Asterisk's connected-line update (it would name a dialled
// leg's caller id, often the wrong party): the runner tells the phones
// itself once the transfer is complete (connected-line.ts).
import { isAriError } from '../ari/errors.js';
import type { AriRestClient } from '../ari/rest-client.js';
import type { StepJournal } from './journal.js';
import type { Move } from './attended-plan.js';

export interface MoveContext {
  rest: Pick<AriRestClient, 'addChannel'>;
  journal: StepJournal;
}

export type MovesResult = { ok: true } | { ok: false; failedStep: string; error: unknown; undone: boolean };

export async function carryOutMoves(moves: Move[], ctx: MoveContext): Promise<MovesResult> {
  const moved: Move[] = [];
  for (const move of moves) {
    try {
      await ctx.rest.addChannel(move.to, move.channelId, { inhibitConnectedLineUpdates: true });
      moved.push(move);
      ctx.journal.info('move', { channelId: move.channelId, from: move.from, to: move.to }, 'transferee moved to the target bridge');
    } catch (error) {
      ctx.journal.error('move', { err: error, channelId: move.channelId, to: move.to }, 'bridge move failed; undoing');
      // A timeout says nothing about whether Asterisk moved the channel:
      // moving it back is then part of the undo too.
      if (isAriError(error) && error.kind !== 'http') moved.push(move);
      const undone = await undoMoves(moved, ctx);
      return { ok: false, failedStep: `move ${move.channelId} to bridge ${move.to}`, error, undone };
    }
  }
  return { ok: true };
}

async function undoMoves(moved: Move[], { rest, journal }: MoveContext): Promise<boolean> {
  let undone = true;
  for (const move of [...moved].reverse()) {
    try {
      await rest.addChannel(move.from, move.channelId, { inhibitConnectedLineUpdates: true });
      journal.info('undo-move', { channelId: move.channelId, to: move.from }, 'transferee moved back');
    } catch (err) {
      undone = false;
      journal.error('undo-move', { err, channelId: move.channelId, to: move.from }, 'could not move the transferee back');
    }
  }
  return undone;
}
