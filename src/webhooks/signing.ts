// Webhook signatures, Stripe-like. Every delivery attempt carries
//
//   X-Ari-Transfer-Timestamp: <unix seconds>
//   X-Ari-Transfer-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
//
// The timestamp is signed with the body, so a receiver that checks it
// against its own clock rejects a captured request replayed later.
// `verifySignature` is what a receiver (written in Node) can use as is.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const TIMESTAMP_HEADER = 'X-Ari-Transfer-Timestamp';
export const SIGNATURE_HEADER = 'X-Ari-Transfer-Signature';
export const DELIVERY_HEADER = 'X-Ari-Transfer-Delivery';
export const ATTEMPT_HEADER = 'X-Ari-Transfer-Attempt';

/** The signature scheme's version, the `v1=` prefix of each signature. */
export const SIGNATURE_VERSION = 'v1';

/** Default replay window of `verifySignature`: 5 minutes either way. */
export const DEFAULT_TOLERANCE_SEC = 300;

/** Hex HMAC-SHA256 of `"<timestamp>.<raw body>"` keyed with `secret`. */
export function computeSignature(secret: string, timestamp: number | string, rawBody: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest('hex');
}

/** The `X-Ari-Transfer-Signature` value: `v1=<hex>`. */
export function signatureHeader(secret: string, timestamp: number | string, rawBody: string | Buffer): string {
  return `${SIGNATURE_VERSION}=${computeSignature(secret, timestamp, rawBody)}`;
}

export interface VerifyOptions {
  /** How far (seconds) the timestamp may be from `now`, either way. Default 300. */
  toleranceSec?: number;
  /** Current time in milliseconds since the epoch. Default Date.now. */
  now?: () => number;
}

/**
 * True when `signatureHeader` holds a `v1=` signature of `rawBody` made with
 * `secret` at `timestamp`, and `timestamp` is within `toleranceSec` of now.
 * `rawBody` must be the bytes received, before any JSON parsing. Several
 * comma-separated signatures are accepted (any one matching is enough); the
 * comparison is constant-time.
 */
export function verifySignature(
  secret: string,
  timestamp: string | number | undefined,
  rawBody: string | Buffer,
  signatureHeader: string | undefined,
  options: VerifyOptions = {},
): boolean {
  if (timestamp === undefined || signatureHeader === undefined || secret === '') return false;
  const ts = String(timestamp).trim();
  if (!/^\d{1,12}$/.test(ts)) return false;
  const toleranceSec = options.toleranceSec ?? DEFAULT_TOLERANCE_SEC;
  const nowSec = (options.now ?? Date.now)() / 1000;
  if (Math.abs(nowSec - Number(ts)) > toleranceSec) return false;

  const expected = Buffer.from(computeSignature(secret, ts, rawBody), 'hex');
  let ok = false;
  for (const part of signatureHeader.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== SIGNATURE_VERSION) continue;
    const hex = part.slice(eq + 1).trim();
    if (!/^[0-9a-fA-F]{64}$/.test(hex)) continue;
    // Every candidate is compared: no early exit on a match.
    if (timingSafeEqual(Buffer.from(hex, 'hex'), expected)) ok = true;
  }
  return ok;
}
