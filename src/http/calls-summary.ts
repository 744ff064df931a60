// What the live page shows of the registry: the calls (a bridge and the
// channels in it), then the channels in no bridge, at most `limit` of each,
// with the totals. Pure: the live feed computes it, compares it with the one
// it sent last, and sends it only when it changed.
import type { BridgeRecord, ChannelRecord } from '../registry/types.js';

export interface PartyView {
  id: string;
  name: string;
  state: string;
  caller: { name: string; number: string };
  hangingUp: boolean;
}

export interface CallView {
  bridgeId: string;
  bridgeName: string;
  parties: PartyView[];
}

export interface CallsSummary {
  totals: { channels: number; bridges: number };
  calls: CallView[];
  /** Channels in no bridge (ringing, on their way in or out). */
  alone: PartyView[];
  /** Calls and lone channels beyond `limit`, only counted. */
  notShown: { calls: number; alone: number };
}

export function summarizeCalls(channels: readonly ChannelRecord[], bridges: readonly BridgeRecord[], limit: number): CallsSummary {
  const byId = new Map(channels.map((c) => [c.id, c]));
  // Oldest first, by id (Asterisk's ids are time-based), so a call keeps its place between updates.
  const sortedBridges = [...bridges].sort((a, b) => compare(a.id, b.id));
  const calls = sortedBridges.slice(0, limit).map((b) => ({
    bridgeId: b.id,
    bridgeName: b.name,
    parties: b.channelIds.flatMap((id) => {
      const c = byId.get(id);
      return c ? [party(c)] : [];
    }),
  }));
  const alone = channels.filter((c) => c.bridgeId === undefined).sort((a, b) => compare(a.id, b.id));
  return {
    totals: { channels: channels.length, bridges: bridges.length },
    calls,
    alone: alone.slice(0, limit).map(party),
    notShown: { calls: Math.max(0, bridges.length - limit), alone: Math.max(0, alone.length - limit) },
  };
}

function party(c: ChannelRecord): PartyView {
  return { id: c.id, name: c.name, state: c.state, caller: { name: c.caller.name, number: c.caller.number }, hangingUp: c.hangingUp };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
