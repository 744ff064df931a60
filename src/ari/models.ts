// Hand-written models of the ARI objects and events this service uses.
// Shapes follow Asterisk's rest-api/api-docs (events.json, channels.json,
// bridges.json) and the recorded traces; only what we read is typed strictly.

export type ChannelState =
  | 'Down'
  | 'Rsrvd'
  | 'OffHook'
  | 'Dialing'
  | 'Ring'
  | 'Ringing'
  | 'Up'
  | 'Busy'
  | 'Dialing Offhook'
  | 'Pre-ring'
  | 'Unknown';

export interface CallerId {
  name: string;
  number: string;
}

export interface DialplanCep {
  context: string;
  exten: string;
  priority: number;
  app_name?: string;
  app_data?: string;
}

export interface Channel {
  id: string;
  name: string;
  state: ChannelState;
  /** SIP Call-ID of a PJSIP channel ("" for Local and other technologies). */
  protocol_id?: string;
  caller: CallerId;
  connected: CallerId;
  accountcode: string;
  dialplan: DialplanCep;
  creationtime: string;
  language: string;
  channelvars?: Record<string, string>;
  caller_rdnis?: string;
  tenantid?: string;
}

export interface Bridge {
  id: string;
  technology: string;
  bridge_type: string;
  bridge_class: string;
  creator: string;
  name: string;
  channels: string[];
  creationtime: string;
  video_mode?: string;
  video_source_id?: string;
}

/** The values `POST /channels/{id}/transfer_progress?states=` accepts. */
export type TransferProgressState =
  | 'channel_progress'
  | 'channel_answered'
  | 'channel_unavailable'
  | 'channel_declined';

export interface AdditionalParam {
  parameter_name: string;
  parameter_value: string;
}

export interface RequiredDestination {
  /** User part of the Refer-To URI (the extension). Always present. */
  destination?: string;
  /** SIP Call-ID from the Replaces parameter (attended transfers only). */
  protocol_id?: string;
  /** The Replaces from-tag and to-tag, as named by the phone. */
  additional_protocol_params?: AdditionalParam[];
}

export interface ReferTo {
  requested_destination: RequiredDestination;
  destination_channel?: Channel;
  connected_channel?: Channel;
  bridge?: Bridge;
}

export interface ReferredBy {
  source_channel: Channel;
  connected_channel?: Channel;
  bridge?: Bridge;
}

interface EventBase {
  timestamp: string;
  application: string;
  asterisk_id?: string;
}

export interface StasisStartEvent extends EventBase {
  type: 'StasisStart';
  args: string[];
  channel: Channel;
  replace_channel?: Channel;
}
export interface StasisEndEvent extends EventBase {
  type: 'StasisEnd';
  channel: Channel;
}
export interface ChannelCreatedEvent extends EventBase {
  type: 'ChannelCreated';
  channel: Channel;
}
export interface ChannelStateChangeEvent extends EventBase {
  type: 'ChannelStateChange';
  channel: Channel;
}
export interface ChannelDestroyedEvent extends EventBase {
  type: 'ChannelDestroyed';
  cause: number;
  cause_txt: string;
  channel: Channel;
}
export interface ChannelHangupRequestEvent extends EventBase {
  type: 'ChannelHangupRequest';
  /** Absent when the hangup came from the phone's BYE (see the traces). */
  cause?: number;
  soft?: boolean;
  channel: Channel;
}
export interface ChannelEnteredBridgeEvent extends EventBase {
  type: 'ChannelEnteredBridge';
  bridge: Bridge;
  channel?: Channel;
}
export interface ChannelLeftBridgeEvent extends EventBase {
  type: 'ChannelLeftBridge';
  bridge: Bridge;
  channel: Channel;
}
export interface BridgeCreatedEvent extends EventBase {
  type: 'BridgeCreated';
  bridge: Bridge;
}
export interface BridgeDestroyedEvent extends EventBase {
  type: 'BridgeDestroyed';
  bridge: Bridge;
}
export interface ChannelHoldEvent extends EventBase {
  type: 'ChannelHold';
  channel: Channel;
  musicclass?: string;
}
export interface ChannelUnholdEvent extends EventBase {
  type: 'ChannelUnhold';
  channel: Channel;
}
export interface ChannelVarsetEvent extends EventBase {
  type: 'ChannelVarset';
  variable: string;
  value: string;
  channel?: Channel;
}
export interface ChannelTransferEvent extends EventBase {
  type: 'ChannelTransfer';
  /** Absent on the event that announces a REFER; set on progress echoes. */
  state?: string;
  refer_to: ReferTo;
  referred_by: ReferredBy;
}

/** Another WebSocket took over our application: we receive nothing more. */
export interface ApplicationReplacedEvent extends EventBase {
  type: 'ApplicationReplaced';
}

export type AriEvent =
  | ApplicationReplacedEvent
  | StasisStartEvent
  | StasisEndEvent
  | ChannelCreatedEvent
  | ChannelStateChangeEvent
  | ChannelDestroyedEvent
  | ChannelHangupRequestEvent
  | ChannelEnteredBridgeEvent
  | ChannelLeftBridgeEvent
  | BridgeCreatedEvent
  | BridgeDestroyedEvent
  | ChannelHoldEvent
  | ChannelUnholdEvent
  | ChannelVarsetEvent
  | ChannelTransferEvent;

export type AriEventType = AriEvent['type'];

export const KNOWN_EVENT_TYPES: ReadonlySet<string> = new Set<AriEventType>([
  'ApplicationReplaced',
  'StasisStart',
  'StasisEnd',
  'ChannelCreated',
  'ChannelStateChange',
  'ChannelDestroyed',
  'ChannelHangupRequest',
  'ChannelEnteredBridge',
  'ChannelLeftBridge',
  'BridgeCreated',
  'BridgeDestroyed',
  'ChannelHold',
  'ChannelUnhold',
  'ChannelVarset',
  'ChannelTransfer',
]);

export type EventOf<T extends AriEventType> = Extract<AriEvent, { type: T }>;
