// Messages between the benchmark's main thread (the service, or the floor
// client, under test) and the worker thread hosting the ARI emulator.

export const ARI_USER = 'asterisk';
export const ARI_PASSWORD = 'bench-secret';
export const ARI_APP = 'ari-transfer';

export type TransferKind = 'attended' | 'blind';

/** The last event a setup emits: once the subject has seen it, it has seen the whole setup. */
export interface Barrier {
  channelId: string;
  bridgeId: string;
}

export interface Counts {
  channels: number;
  bridges: number;
}

/** What the emulator saw of a batch of REFERs (all times in ms, on the emulator's clock). */
export interface ReferBatchResult {
  sent: number;
  terminated: number;
  /** Not terminated when the batch's deadline passed. */
  lost: number;
  /** sendRefer threw (the source channel was not there). */
  refused: number;
  /** Terminating sipfrag code → how many. */
  codes: Record<string, number>;
  /** ChannelTransfer emitted → terminating transfer_progress handled, per terminated REFER. */
  latencyMs: number[];
  /** ChannelTransfer emitted → channel_progress (100 Trying) handled. */
  tryingMs: number[];
  /** First ChannelTransfer emitted → last REFER terminated. */
  wallMs: number;
}

export type WorkerRequest =
  | { op: 'start'; noiseEvents: boolean }
  | { op: 'setup'; kind: TransferKind; count: number; cleanFirst: boolean }
  | { op: 'refer'; count: number; concurrency: number; deadlineMs: number }
  | { op: 'counts' }
  | { op: 'populate'; channels: number }
  | { op: 'close' };

export interface WorkerReplies {
  start: { url: string };
  setup: { barrier: Barrier; counts: Counts };
  refer: ReferBatchResult;
  counts: Counts;
  populate: Counts;
  close: null;
}

export type Envelope = { id: number; request: WorkerRequest };
export type ReplyEnvelope = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };
