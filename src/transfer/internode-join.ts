// The other half of a transfer across nodes, on the node of the replaced
// call: a call from the transferring node arrives over the trunk (Stasis
// argument "internode", extension xfer-<transfer id>); the join request
// that node left in the shared registry says which leg it replaces. The
// call is put in that leg's bridge, then answered (so the media path is
// whole when the other node sees the answer and sends its 200); once that
// node says it joined the call (or, without its word, the call is still
// up), the replaced leg is hung up. Anything missing or failing before the
// answer: the call is refused (congestion), and the transferring node
// answers its phone 503; a join that fails there leaves the call here as
// it was.
import type { AriRestClient } from '../ari/rest-client.js';
import type { Channel } from '../ari/models.js';
import { hangUpLeg } from '../legs/hang-up.js';
import { transferOfInternodeExten } from '../legs/internode.js';
import type { Logger } from '../logger.js';
import type { CallRegistry } from '../registry/call-registry.js';

/** How long to wait for the other node's word that it joined the call (it comes within milliseconds). */
const CONFIRMATION_WAIT_MS = 3000;

export interface InternodeJoinDeps {
  rest: Pick<AriRestClient, 'addChannel' | 'answer' | 'hangup'>;
  registry: CallRegistry;
  logger: Logger;
}

export class InternodeJoins {
  private readonly log: Logger;

  constructor(private readonly deps: InternodeJoinDeps) {
    this.log = deps.logger.child({ component: 'internode' });
  }

  /** A call from another node entered the application: connect it as its transfer asks, or refuse it. */
  async accept(channel: Channel): Promise<void> {
    const transferId = transferOfInternodeExten(channel.dialplan?.exten);
    const log = this.log.child({ channelId: channel.id, ...(transferId ? { transferId } : {}) });
    if (!transferId) return this.refuse(channel.id, log, `extension ${channel.dialplan?.exten ?? '(none)'} names no transfer`);
    const { registry, rest } = this.deps;
    if (!registry.otherNodes) return this.refuse(channel.id, log, 'no shared registry here (REGISTRY=memory)');
    let request;
    try {
      request = await registry.otherNodes.takeJoin(transferId);
    } catch (err) {
      return this.refuse(channel.id, log, (err as Error).message);
    }
    if (!request) return this.refuse(channel.id, log, 'no join request for this transfer (expired, or already taken)');
    const replaced = await registry.store.getChannel(request.replacedId);
    if (!replaced || replaced.hangingUp || !replaced.bridgeId) {
      return this.refuse(channel.id, log, `the replaced leg ${request.replacedId} is gone or in no bridge`);
    }
    try {
      await rest.addChannel(replaced.bridgeId, channel.id, { inhibitConnectedLineUpdates: true });
      await rest.answer(channel.id);
    } catch (err) {
      return this.refuse(channel.id, log, `could not connect it to bridge ${replaced.bridgeId}: ${(err as Error).message}`);
    }
    log.info({ fromNode: request.fromNode, bridgeId: replaced.bridgeId, replacedChannelId: replaced.id }, `connected the call from node ${request.fromNode}; waiting for it to be joined there`);
    // The replaced leg goes only once the other node has joined the call:
    // if it cannot, the consultation call here stays as it was.
    const joined = await registry.otherNodes.joinConfirmation(transferId, CONFIRMATION_WAIT_MS).catch(() => undefined);
    const callStillUp = async () => {
      const c = await registry.store.getChannel(channel.id);
      return c !== undefined && !c.hangingUp;
    };
    if (joined === false || (joined === undefined && !(await callStillUp()))) {
      log.warn({ fromNode: request.fromNode, replacedChannelId: replaced.id }, `node ${request.fromNode} could not join the call: the replaced leg stays`);
      return;
    }
    log.info({ fromNode: request.fromNode, replacedChannelId: replaced.id, confirmed: joined === true }, `joined the call from node ${request.fromNode}; hanging up the replaced leg`);
    const gone = await hangUpLeg(replaced.id, this.deps);
    if (!gone.gone) log.error({ err: gone.err, replacedChannelId: replaced.id }, 'the replaced leg could not be hung up');
  }

  private async refuse(channelId: string, log: Logger, why: string): Promise<void> {
    log.warn({ why }, `refusing a call from another node: ${why}`);
    // Congestion (cause 34): the transferring node tells its phone 503.
    await this.deps.rest.hangup(channelId, 'congestion').catch((err: unknown) => log.warn({ err }, 'could not refuse it'));
  }
}
