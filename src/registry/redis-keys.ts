// Where the shared registry lives in Redis. Each node's entries are a few
// hashes under its own name, so one PEXPIRE per key keeps a live node's
// entries and lets a dead node's expire.
//
//   <prefix>:nodes                      sorted set: node → last heartbeat (ms)
//   <prefix>:node:<node>:channels       hash: channel id → ChannelRecord (JSON)
//   <prefix>:node:<node>:bridges        hash: bridge id → BridgeRecord (JSON)
//   <prefix>:node:<node>:callids        hash: SIP Call-ID → channel ids (JSON array)
//   <prefix>:node:<node>:join:<id>      string: a transfer's JoinRequest for that node (expires)
export interface NodeKeys {
  channels: string;
  bridges: string;
  callIds: string;
}

export function nodesKey(prefix: string): string {
  return `${prefix}:nodes`;
}

export function nodeKeys(prefix: string, node: string): NodeKeys {
  const base = `${prefix}:node:${node}`;
  return { channels: `${base}:channels`, bridges: `${base}:bridges`, callIds: `${base}:callids` };
}

export function joinKey(prefix: string, node: string, transferId: string): string {
  return `${prefix}:node:${node}:join:${transferId}`;
}
