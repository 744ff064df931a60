// The words every part of a transfer shares: what kind it is, how it ended.
export type TransferKind = 'attended' | 'blind';
export type TransferResult = 'completed' | 'rejected' | 'failed';
