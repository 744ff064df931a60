// A phone that puts its call on hold (re-INVITE sendonly) makes Asterisk
// emit ChannelHold; the parties it left hear music on hold until
// ChannelUnhold. Channels we start music on are marked in the registry, so
// that a transfer stops the music it did not start itself.
import { isAriError } from '../ari/errors.js';
import type { AriEvent } from '../ari/models.js';
import type { ChannelSound } from '../legs/channel-sound.js';
import type { Logger } from '../logger.js';
import type { CallRegistry } from '../registry/call-registry.js';

export interface HoldMusicDeps {
  sound: Pick<ChannelSound, 'startMoh' | 'stopMoh'>;
  registry: CallRegistry;
  mohClass: string;
  logger: Logger;
}

export class HoldMusic {
  private readonly log: Logger;

  constructor(private readonly deps: HoldMusicDeps) {
    this.log = deps.logger.child({ component: 'hold' });
  }

  /**
   * Decides in event order (registry reads and the mohByService mark, so
   * a transfer right behind sees it), but the REST calls run off the event
   * queue: a REFER must not wait behind them.
   */
  async onEvent(event: AriEvent): Promise<void> {
    if (event.type === 'ChannelHold') await this.toPeers(event.channel.id, true);
    else if (event.type === 'ChannelUnhold') await this.toPeers(event.channel.id, false);
  }

  private async toPeers(heldId: string, on: boolean): Promise<void> {
    const { registry } = this.deps;
    const held = await registry.store.getChannel(heldId);
    const bridge = held?.bridgeId ? await registry.store.getBridge(held.bridgeId) : undefined;
    if (!bridge) return;
    for (const peerId of bridge.channelIds) {
      if (peerId === heldId) continue;
      const peer = await registry.store.getChannel(peerId);
      if (!peer || peer.hangingUp || peer.mohByService === on) continue;
      await registry.store.patchChannel(peerId, { mohByService: on });
      this.change(heldId, peerId, on);
    }
  }

  // Not awaited by the event queue; ChannelSound keeps each channel's requests in order.
  private change(heldId: string, peerId: string, on: boolean): void {
    const { sound, registry, mohClass } = this.deps;
    void (on ? sound.startMoh(peerId, mohClass) : sound.stopMoh(peerId)).then(
      () => this.log.info({ heldChannelId: heldId, channelId: peerId, mohClass }, on ? 'music on hold started' : 'music on hold stopped'),
      async (err: unknown) => {
        if (isAriError(err, 404)) return;
        this.log.warn({ err, channelId: peerId }, 'could not change music on hold');
        // Not done after all: the mark says what the channel really hears.
        const now = await registry.store.getChannel(peerId);
        if (now?.mohByService === on) await registry.store.patchChannel(peerId, { mohByService: !on });
      },
    );
  }
}
