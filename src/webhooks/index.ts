// Signed webhooks about transfers: see the README, section Webhooks.
export { WebhookNotifier, type HookName, type WebhookNotifierOptions, type WebhookType } from './webhook-notifier.js';
export {
  ATTEMPT_HEADER,
  computeSignature,
  DEFAULT_TOLERANCE_SEC,
  DELIVERY_HEADER,
  SIGNATURE_HEADER,
  signatureHeader,
  TIMESTAMP_HEADER,
  verifySignature,
  type VerifyOptions,
} from './signing.js';
export { DeliveryQueue, type AttemptOutcome, type DeliveryQueueOptions, type QueueStats } from './delivery-queue.js';
