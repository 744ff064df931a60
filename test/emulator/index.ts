// Public entry of the ARI emulator used by unit, e2e and conformance tests.
export { AriEmulator } from './emulator.js';
export type { InboundCallOptions, OriginateParams } from './dialing.js';
export type {
  AriEmulatorOptions,
  EmittedEvent,
  EmulatedBridge,
  EmulatedChannel,
  EndpointBehaviour,
  DelayInjection,
  FailureInjection,
  RandomFailure,
  RequestHook,
  ResponseFirst,
  RequestMatch,
  HangupBy,
  HangupRecord,
  ReferAnswer,
  ReferHandle,
  ReferNotify,
  ReferOutRecord,
  ReferSpec,
  RequestRecord,
  SipDialog,
} from './types.js';
