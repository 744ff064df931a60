// GET /calls: what the call registry knows, as this service sees Asterisk:
// the channels (with SIP Call-IDs and callers) and the bridges they are in.
import type { FastifyPluginAsync } from 'fastify';
import type { BridgeRecord, ChannelRecord, RegistryStore } from '../../registry/types.js';

export interface CallsRoutesOptions {
  store: Pick<RegistryStore, 'listChannels' | 'listBridges'>;
}

export interface ChannelView {
  id: string;
  name: string;
  state: string;
  callId: string | null;
  caller: { name: string; number: string };
  bridgeId: string | null;
  hangingUp: boolean;
}

export interface BridgeView {
  id: string;
  name: string;
  channelIds: string[];
}

export const callsRoutes: FastifyPluginAsync<CallsRoutesOptions> = async (app, { store }) => {
  app.get('/calls', async () => {
    const [channels, bridges] = await Promise.all([store.listChannels(), store.listBridges()]);
    return { channels: channels.map(channelView), bridges: bridges.map(bridgeView) };
  });
};

function channelView(c: ChannelRecord): ChannelView {
  return {
    id: c.id,
    name: c.name,
    state: c.state,
    callId: c.callId ?? null,
    caller: { name: c.caller.name, number: c.caller.number },
    bridgeId: c.bridgeId ?? null,
    hangingUp: c.hangingUp,
  };
}

function bridgeView(b: BridgeRecord): BridgeView {
  return { id: b.id, name: b.name, channelIds: [...b.channelIds] };
}
