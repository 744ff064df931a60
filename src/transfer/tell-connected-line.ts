// The effects of connected-line.ts, in two steps around the phone's legs
// leaving the call: before, the parties are read and a dialled leg's caller
// id is made its party's (so Asterisk's own update at the leave is right);
// after they have left, CONNECTEDLINE(all) is set on each party's channel,
// which Asterisk sends that channel's phone as an UPDATE or re-INVITE (or
// drops, when its own update already said the same). Never fails a
// transfer: whatever goes wrong is a step.
import { isAriError } from '../ari/errors.js';
import type { AriRestClient } from '../ari/rest-client.js';
import { DIALLED_PARTY_VAR } from '../legs/dialer.js';
import type { RegistryStore } from '../registry/types.js';
import { callerIdFixes, decideConnectedLines, identityOf, type ConnectedLineSet, type Party } from './connected-line.js';
import type { StepJournal } from './journal.js';

export interface ConnectedLineDeps {
  rest: Pick<AriRestClient, 'getChannel' | 'getChannelVariable' | 'setChannelVariable'>;
  store: Pick<RegistryStore, 'getChannel'>;
  journal: StepJournal;
}

/** How long the phone's legs may take to leave the bridge before the phones are told anyway. */
const LEAVE_WAIT_MS = 2000;
const LEAVE_POLL_MS = 10;

async function partyOf(rest: ConnectedLineDeps['rest'], channelId: string): Promise<Party> {
  const [channel, dialled] = await Promise.all([
    rest.getChannel(channelId),
    // 404: no such variable, a channel that called in.
    rest.getChannelVariable(channelId, DIALLED_PARTY_VAR).catch((err: unknown) => {
      if (isAriError(err, 404)) return '';
      throw err;
    }),
  ]);
  return { channelId, caller: channel.caller, dialled: dialled || undefined };
}

export class ConnectedLineTelling {
  private constructor(
    private readonly deps: ConnectedLineDeps,
    private readonly parties: [Party[], Party[]],
    private readonly transfererNumbers: string[],
  ) {}

  /** Before the phone's legs leave: reads both sides (and the transferer) and puts right the caller id of dialled legs. */
  static async prepare(deps: ConnectedLineDeps, sides: [string[], string[]], transfererId: string): Promise<ConnectedLineTelling | undefined> {
    let parties: [Party[], Party[]];
    // A transferer already gone (hung up after its REFER) excludes nobody.
    const transferer = partyOf(deps.rest, transfererId).catch(() => undefined);
    try {
      parties = [await Promise.all(sides[0].map((id) => partyOf(deps.rest, id))), await Promise.all(sides[1].map((id) => partyOf(deps.rest, id)))];
    } catch (err) {
      deps.journal.warn('connected-line', { err, channelIds: sides.flat() }, 'could not read the parties: phones not told whom they talk to');
      return undefined;
    }
    const gone = await transferer;
    const telling = new ConnectedLineTelling(deps, parties, gone ? [identityOf(gone).number] : []);
    await telling.setAll(callerIdFixes(parties.flat()), 'CALLERID(all)', 'dialled leg\'s caller id set to its party');
    return telling;
  }

  /** Once `leaving` have left their bridge (or after LEAVE_WAIT_MS): each phone is told whom it talks to. */
  async afterLeaving(leaving: string[]): Promise<void> {
    await this.leftOrLate(leaving);
    const { sets, skipped } = decideConnectedLines(...this.parties, this.transfererNumbers);
    if (skipped.length > 0) this.deps.journal.info('connected-line', { skipped }, 'some phones are not told whom they talk to');
    await this.setAll(sets, 'CONNECTEDLINE(all)', 'phone told whom it talks to');
  }

  private async leftOrLate(leaving: string[]): Promise<void> {
    const deadline = Date.now() + LEAVE_WAIT_MS;
    const left = async () => (await Promise.all(leaving.map((id) => this.deps.store.getChannel(id)))).every((c) => c === undefined || c.bridgeId === undefined);
    while (!(await left())) {
      if (Date.now() > deadline) {
        this.deps.journal.warn('connected-line', { channelIds: leaving }, 'the phone\'s legs are still in a bridge: telling the phones anyway');
        return;
      }
      await new Promise((r) => setTimeout(r, LEAVE_POLL_MS));
    }
  }

  private async setAll(sets: ConnectedLineSet[], variable: string, done: string): Promise<void> {
    await Promise.all(
      sets.map(async ({ channelId, value }) => {
        try {
          await this.deps.rest.setChannelVariable(channelId, variable, value);
          this.deps.journal.info('connected-line', { channelId, variable, value }, done);
        } catch (err) {
          this.deps.journal.warn('connected-line', { err, channelId, variable, value }, `could not set ${variable}`);
        }
      }),
    );
  }
}
