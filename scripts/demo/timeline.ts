// Puts the emulator's two records in one order: the events it emitted and
// the REST requests it received. The request log carries no timestamps, but
// the emulator emits a request's events synchronously, before it records the
// request; so a request whose effect is an event (originate → ChannelCreated,
// addChannel → ChannelEnteredBridge, ...) is anchored at that event, and the
// requests that produce no event (ringing, music on hold) are placed between
// the anchors of their neighbours in the request log: after the event that
// triggered them (ChannelHold for music on hold) or else right after the
// previous anchor.
import type { EmittedEvent, RequestRecord } from '../../test/emulator/index.js';

export type TimelineItem = { kind: 'event'; event: EmittedEvent } | { kind: 'request'; request: RequestRecord };

/** Requests that produce no event but are worth showing. */
export function isShownRequest(r: RequestRecord): boolean {
  return r.status < 300 && /^\/channels\/[^/]+\/(ring|moh)$/.test(r.path) && (r.method === 'POST' || r.method === 'DELETE');
}

/** Whether `e` is the event request `r` produced. */
function producedBy(r: RequestRecord, e: EmittedEvent): boolean {
  if (r.status >= 300) return false;
  const p = r.path.split('/').slice(1);
  const channelId = e.channel?.id;
  const bridgeId = e.bridge?.id;
  if (p[0] === 'channels' && p.length === 2) {
    if (r.method === 'POST') return e.type === 'ChannelCreated' && channelId === p[1];
    if (r.method === 'DELETE') return e.type === 'ChannelHangupRequest' && channelId === p[1];
  }
  if (p[0] === 'channels' && p.length === 3 && r.method === 'POST') {
    if (p[2] === 'answer') return e.type === 'ChannelStateChange' && channelId === p[1] && e.channel?.state === 'Up';
    if (p[2] === 'transfer_progress') {
      return e.type === 'ChannelTransfer' && e.state !== undefined && referSource(e) === p[1];
    }
  }
  if (p[0] === 'bridges' && p.length === 2) {
    if (r.method === 'POST') return e.type === 'BridgeCreated' && bridgeId === p[1];
    if (r.method === 'DELETE') return e.type === 'BridgeDestroyed' && bridgeId === p[1];
  }
  if (p[0] === 'bridges' && p.length === 3 && r.method === 'POST') {
    const type = p[2] === 'addChannel' ? 'ChannelEnteredBridge' : p[2] === 'removeChannel' ? 'ChannelLeftBridge' : undefined;
    return e.type === type && bridgeId === p[1] && channelId === r.query.channel;
  }
  return false;
}

/** Events that make the service send a request producing no event. */
function triggers(r: RequestRecord, e: EmittedEvent): boolean {
  if (r.path.endsWith('/moh')) return e.type === 'ChannelHold' || e.type === 'ChannelUnhold';
  return false;
}

/** The transferring channel of a ChannelTransfer event. */
export function referSource(e: EmittedEvent): string | undefined {
  return e.referred_by?.source_channel.id;
}

/**
 * Index after which a request anchored at `anchor` has finished: the anchor
 * and the events the same request emitted with it (same channel, same
 * millisecond: the rest of a hangup, say).
 */
function endOfAnchor(events: readonly EmittedEvent[], anchor: number): number {
  const a = events[anchor];
  let end = anchor;
  if (!a?.channel) return end;
  for (let i = anchor + 1; i < events.length; i++) {
    const e = events[i]!;
    if (e.timestamp !== a.timestamp || e.channel?.id !== a.channel.id) break;
    end = i;
  }
  return end;
}

export function mergeTimeline(events: readonly EmittedEvent[], requests: readonly RequestRecord[]): TimelineItem[] {
  // 1. Anchor each request at the event it produced, searching forward only.
  const anchors: (number | undefined)[] = [];
  let cursor = 0;
  for (const r of requests) {
    let found: number | undefined;
    for (let i = cursor; i < events.length; i++) {
      if (producedBy(r, events[i]!)) {
        found = i;
        break;
      }
    }
    anchors.push(found);
    if (found !== undefined) cursor = found + 1;
  }

  // 2. Place each shown request after the last event it may follow.
  const after = new Map<number, RequestRecord[]>(); // event index → requests right after it; -1: before all
  let prevAnchor = -1;
  for (let k = 0; k < requests.length; k++) {
    const anchor = anchors[k];
    if (anchor !== undefined) {
      prevAnchor = anchor;
      continue;
    }
    const r = requests[k]!;
    if (!isShownRequest(r)) continue;
    const nextAnchor = anchors.slice(k + 1).find((a) => a !== undefined) ?? events.length;
    let at = prevAnchor >= 0 ? endOfAnchor(events, prevAnchor) : -1;
    for (let i = Math.max(prevAnchor + 1, 0); i < nextAnchor; i++) if (triggers(r, events[i]!)) at = Math.max(at, i);
    at = Math.min(at, nextAnchor - 1);
    const list = after.get(at) ?? [];
    list.push(r);
    after.set(at, list);
  }

  const items: TimelineItem[] = (after.get(-1) ?? []).map((request) => ({ kind: 'request', request }));
  events.forEach((event, i) => {
    items.push({ kind: 'event', event });
    for (const request of after.get(i) ?? []) items.push({ kind: 'request', request });
  });
  return items;
}
