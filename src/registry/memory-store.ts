// The in-memory registry store: maps by id plus a SIP Call-ID index.
// Everything is removed when Asterisk says the channel or bridge is gone,
// so a long run holds only live calls (and a bounded list of tombstones).
import type { BridgeRecord, ChannelRecord, RegistryCounts, RegistryStore } from './types.js';

export interface MemoryStoreOptions {
  /** How long an ended channel id is remembered (late events about it). */
  tombstoneTtlMs?: number;
  /** Upper bound on remembered ended channel ids. */
  maxTombstones?: number;
  now?: () => number;
}

export class MemoryRegistryStore implements RegistryStore {
  private readonly channels = new Map<string, ChannelRecord>();
  private readonly bridges = new Map<string, BridgeRecord>();
  private readonly byCallId = new Map<string, Set<string>>();
  // Insertion-ordered, so the oldest tombstones are the first keys.
  private readonly tombstones = new Map<string, number>();
  private readonly ttlMs: number;
  private readonly maxTombstones: number;
  private readonly now: () => number;

  constructor(options: MemoryStoreOptions = {}) {
    this.ttlMs = options.tombstoneTtlMs ?? 60_000;
    this.maxTombstones = options.maxTombstones ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  async getChannel(id: string) {
    const record = this.channels.get(id);
    return record && { ...record };
  }

  async getBridge(id: string) {
    const record = this.bridges.get(id);
    return record && { ...record, channelIds: [...record.channelIds] };
  }

  async channelsByCallId(callId: string) {
    const ids = this.byCallId.get(callId);
    if (!ids) return [];
    return [...ids].flatMap((id) => {
      const record = this.channels.get(id);
      return record ? [{ ...record }] : [];
    });
  }

  async recentlyEnded(id: string) {
    this.pruneTombstones();
    return this.tombstones.has(id);
  }

  async putChannel(record: ChannelRecord) {
    const previous = this.channels.get(record.id);
    if (previous) this.unindex(previous);
    this.channels.set(record.id, { ...record });
    this.index(record);
    this.tombstones.delete(record.id);
  }

  async updateChannel(id: string, update: (previous: ChannelRecord | undefined) => ChannelRecord) {
    const previous = this.channels.get(id);
    await this.putChannel(update(previous ? { ...previous } : undefined));
  }

  async patchChannel(id: string, patch: Partial<Omit<ChannelRecord, 'id'>>) {
    const previous = this.channels.get(id);
    if (!previous) return;
    await this.putChannel({ ...previous, ...patch, id });
  }

  async removeChannel(id: string) {
    const previous = this.channels.get(id);
    if (previous) {
      this.unindex(previous);
      this.channels.delete(id);
    }
    this.tombstones.delete(id);
    this.tombstones.set(id, this.now());
    this.pruneTombstones();
  }

  async putBridge(record: BridgeRecord) {
    this.bridges.set(record.id, { ...record, channelIds: [...record.channelIds] });
  }

  async removeBridge(id: string) {
    this.bridges.delete(id);
  }

  async replaceAll(channels: ChannelRecord[], bridges: BridgeRecord[]) {
    this.channels.clear();
    this.bridges.clear();
    this.byCallId.clear();
    for (const c of channels) await this.putChannel(c);
    for (const b of bridges) await this.putBridge(b);
  }

  async listChannels() {
    return [...this.channels.values()].map((c) => ({ ...c }));
  }

  async listBridges() {
    return [...this.bridges.values()].map((b) => ({ ...b, channelIds: [...b.channelIds] }));
  }

  async counts(): Promise<RegistryCounts> {
    return { channels: this.channels.size, bridges: this.bridges.size, callIds: this.byCallId.size };
  }

  // Synchronous reads, for a store built on this one (shared-store.ts) that
  // must read the state as it is at the moment of a write.
  peekChannel(id: string): ChannelRecord | undefined {
    const record = this.channels.get(id);
    return record && { ...record };
  }

  peekBridge(id: string): BridgeRecord | undefined {
    const record = this.bridges.get(id);
    return record && { ...record, channelIds: [...record.channelIds] };
  }

  /** Ids of the channels carrying this Call-ID. */
  peekCallId(callId: string): string[] {
    return [...(this.byCallId.get(callId) ?? [])];
  }

  peekAll(): { channels: ChannelRecord[]; bridges: BridgeRecord[]; callIds: Map<string, string[]> } {
    return {
      channels: [...this.channels.values()].map((c) => ({ ...c })),
      bridges: [...this.bridges.values()].map((b) => ({ ...b, channelIds: [...b.channelIds] })),
      callIds: new Map([...this.byCallId].map(([callId, ids]) => [callId, [...ids]])),
    };
  }

  private index(record: ChannelRecord) {
    if (!record.callId) return;
    let ids = this.byCallId.get(record.callId);
    if (!ids) this.byCallId.set(record.callId, (ids = new Set()));
    ids.add(record.id);
  }

  private unindex(record: ChannelRecord) {
    if (!record.callId) return;
    const ids = this.byCallId.get(record.callId);
    ids?.delete(record.id);
    if (ids?.size === 0) this.byCallId.delete(record.callId);
  }

  private pruneTombstones() {
    const oldest = this.now() - this.ttlMs;
    for (const [id, at] of this.tombstones) {
      if (at >= oldest && this.tombstones.size <= this.maxTombstones) break;
      this.tombstones.delete(id);
    }
  }
}
