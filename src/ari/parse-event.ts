// Turns one WebSocket text frame into a typed event, or says why not.
// Only the fields the service relies on are checked; Asterisk adds fields
// across versions and those must pass through untouched.
import { KNOWN_EVENT_TYPES, type AriEvent } from './models.js';

export type ParsedFrame =
  | { kind: 'event'; event: AriEvent }
  /** The answer to a request sent on this socket (ws-rest.ts). */
  | { kind: 'rest-response'; frame: Record<string, unknown> }
  | { kind: 'unknown'; type: string }
  | { kind: 'malformed'; reason: string };

export function parseEventFrame(text: string): ParsedFrame {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return { kind: 'malformed', reason: 'not JSON' };
  }
  if (!isObject(data)) return { kind: 'malformed', reason: 'not a JSON object' };
  if (typeof data.type !== 'string') return { kind: 'malformed', reason: 'no type' };
  if (data.type === 'RESTResponse') return { kind: 'rest-response', frame: data };
  if (!KNOWN_EVENT_TYPES.has(data.type)) return { kind: 'unknown', type: data.type };
  const problem = shapeProblem(data);
  return problem ? { kind: 'malformed', reason: `${data.type}: ${problem}` } : { kind: 'event', event: data as unknown as AriEvent };
}

function shapeProblem(e: Record<string, unknown>): string | undefined {
  switch (e.type) {
    case 'ApplicationReplaced':
      return undefined;
    case 'BridgeCreated':
    case 'BridgeDestroyed':
      return bridgeProblem(e.bridge, 'bridge');
    case 'ChannelEnteredBridge':
      return bridgeProblem(e.bridge, 'bridge') ?? (e.channel === undefined ? undefined : channelProblem(e.channel, 'channel'));
    case 'ChannelLeftBridge':
      return bridgeProblem(e.bridge, 'bridge') ?? channelProblem(e.channel, 'channel');
    case 'ChannelVarset':
      return e.channel === undefined ? undefined : channelProblem(e.channel, 'channel');
    case 'ChannelTransfer':
      return transferProblem(e);
    case 'StasisStart':
      if (!Array.isArray(e.args) || !e.args.every((a) => typeof a === 'string')) return 'args is not a list of strings';
      return channelProblem(e.channel, 'channel');
    default:
      return channelProblem(e.channel, 'channel');
  }
}

function transferProblem(e: Record<string, unknown>): string | undefined {
  if (e.state !== undefined && typeof e.state !== 'string') return 'state is not a string';
  const by = e.referred_by;
  if (!isObject(by)) return 'no referred_by';
  const to = e.refer_to;
  if (!isObject(to) || !isObject(to.requested_destination)) return 'no refer_to.requested_destination';
  const dest = to.requested_destination;
  if (dest.destination !== undefined && typeof dest.destination !== 'string') return 'requested_destination.destination is not a string';
  if (dest.protocol_id !== undefined && typeof dest.protocol_id !== 'string') return 'requested_destination.protocol_id is not a string';
  const params = dest.additional_protocol_params;
  if (params !== undefined && !(Array.isArray(params) && params.every(isProtocolParam))) {
    return 'requested_destination.additional_protocol_params is not a list of {parameter_name, parameter_value}';
  }
  return (
    channelProblem(by.source_channel, 'referred_by.source_channel') ??
    optional(by.connected_channel, 'referred_by.connected_channel', channelProblem) ??
    optional(by.bridge, 'referred_by.bridge', bridgeProblem) ??
    optional(to.destination_channel, 'refer_to.destination_channel', channelProblem) ??
    optional(to.connected_channel, 'refer_to.connected_channel', channelProblem) ??
    optional(to.bridge, 'refer_to.bridge', bridgeProblem)
  );
}

function optional(v: unknown, name: string, check: (v: unknown, name: string) => string | undefined) {
  return v === undefined ? undefined : check(v, name);
}

function channelProblem(c: unknown, name: string): string | undefined {
  if (!isObject(c)) return `no ${name}`;
  if (typeof c.id !== 'string' || c.id === '') return `${name} has no id`;
  if (typeof c.name !== 'string') return `${name} has no name`;
  if (c.protocol_id !== undefined && typeof c.protocol_id !== 'string') return `${name}.protocol_id is not a string`;
  return undefined;
}

function bridgeProblem(b: unknown, name: string): string | undefined {
  if (!isObject(b)) return `no ${name}`;
  if (typeof b.id !== 'string' || b.id === '') return `${name} has no id`;
  if (!Array.isArray(b.channels) || !b.channels.every((c) => typeof c === 'string')) return `${name}.channels is not a list of ids`;
  return undefined;
}

function isProtocolParam(p: unknown): boolean {
  return isObject(p) && typeof p.parameter_name === 'string' && typeof p.parameter_value === 'string';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
