// Destination policy for transfers. A blind transfer makes this service dial
// a number the phone chose: the classic toll-fraud path is a REFER to a
// premium-rate number. Every destination is checked here before anything is
// dialled; the caller answers a refusal with 603 Decline and leaves the call
// as it was.
//
// Checks run cheapest and most certain first, and the first failure wins:
//   syntax -> deny/allow lists -> loop -> webhook (when configured).
// The syntax check lives in destination-syntax.ts: the router checks
// the extensions it routes with it too.
// The pure checks do no I/O; only DestinationPolicy talks to the webhook,
// and it fails closed.
import axios from 'axios';
import { parseRecallSetting, type RecallSetting } from '../config.js';
import { checkDestination } from '../destination-syntax.js';
import type { Logger } from '../logger.js';
import { preview, truncate } from '../untrusted-text.js';

export interface PartyDescription {
  channelId: string;
  name: string;
  /** PJSIP endpoint, from a channel name 'PJSIP/<endpoint>-<hex>' */
  endpoint: string | undefined;
  callId: string | undefined;
  callerId: { name: string; number: string };
}

export interface TransferDescription {
  kind: 'blind' | 'attended';
  destination: string;
  /** The channel the REFER arrived on. */
  transferer: PartyDescription;
  /** The others in the transferer's bridge. */
  transferees: PartyDescription[];
  bridgeId: string | undefined;
}

export type PolicyRule = 'invalid' | 'deny-list' | 'not-allowed' | 'loop' | 'webhook-deny' | 'webhook-error';

/** `recall`: the webhook's choice for this transfer, instead of TRANSFER_RECALL. */
export type PolicyDecision = { allowed: true; recall?: RecallSetting } | { allowed: false; rule: PolicyRule; detail: string };

export interface PolicyConfig {
  allow: RegExp[];
  deny: RegExp[];
  webhookUrl: string | undefined;
  webhookTimeoutMs: number;
}

const ALLOWED: PolicyDecision = { allowed: true };

function deny(rule: PolicyRule, detail: string): PolicyDecision {
  return { allowed: false, rule, detail };
}

export function endpointOf(channelName: string): string | undefined {
  // Asterisk names PJSIP channels '<tech>/<endpoint>-<%08x counter>'; the
  // endpoint itself may contain '-', so the last one is the separator.
  const m = /^PJSIP\/(.+)-[0-9a-f]+$/i.exec(channelName);
  return m?.[1];
}

export function checkLists(destination: string, cfg: Pick<PolicyConfig, 'allow' | 'deny'>): PolicyDecision {
  // Deny first: an allow pattern written too broadly must not reopen a
  // premium-rate prefix that the deny list closes.
  const denied = cfg.deny.find((re) => re.test(destination));
  if (denied) return deny('deny-list', `destination ${preview(destination)} matches deny pattern ${denied.source}`);
  if (cfg.allow.length > 0 && !cfg.allow.some((re) => re.test(destination))) {
    return deny('not-allowed', `destination ${preview(destination)} matches no allow pattern`);
  }
  return ALLOWED;
}

export function checkLoop(t: TransferDescription): PolicyDecision {
  // In ari-only mode Asterisk has no loop protection: dialling the
  // transferer's own extension INVITEs the phone that is in the call, and
  // dialling a party already in the bridge calls it a second time.
  const d = t.destination;
  const own = matchParty(t.transferer, d);
  if (own) return deny('loop', `destination ${preview(d)} is the transferer's own ${own} (${t.transferer.name})`);
  for (const party of t.transferees) {
    const which = matchParty(party, d);
    if (which) return deny('loop', `destination ${preview(d)} is the ${which} of ${party.name}, already in the call`);
  }
  return ALLOWED;
}

function matchParty(p: PartyDescription, destination: string): string | undefined {
  if (p.callerId.number !== '' && p.callerId.number === destination) return 'caller number';
  if (p.endpoint !== undefined && p.endpoint !== '' && p.endpoint === destination) return 'endpoint';
  return undefined;
}

// The webhook's answer: {"allow": true, "recall"?: "..."} or {"allow": false,
// "reason"?: "..."}. Other members are ignored; a wrong type or value on
// these three is an error (recall: off, transferer or a destination).
type WebhookVerdict = { allow: boolean; reason: string | undefined; recall: RecallSetting | undefined };

function parseVerdict(text: string): WebhookVerdict | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const { allow, reason, recall } = body as Record<string, unknown>;
  if (typeof allow !== 'boolean') return undefined;
  if (reason !== undefined && reason !== null && typeof reason !== 'string') return undefined;
  let recallSetting: RecallSetting | undefined;
  if (recall !== undefined && recall !== null) {
    const parsed = typeof recall === 'string' ? parseRecallSetting(recall) : 'not a string';
    if (typeof parsed === 'string') return undefined;
    recallSetting = parsed;
  }
  return { allow, reason: reason ?? undefined, recall: recallSetting };
}

const MAX_WEBHOOK_RESPONSE_BYTES = 64 * 1024;
const MAX_REASON_CHARS = 200;

export class DestinationPolicy {
  private readonly webhookUrl: string | undefined;
  /** Origin and path only: the URL may carry user:password. */
  private readonly webhookForLogs: string | undefined;

  constructor(
    private readonly cfg: PolicyConfig,
    private readonly logger: Logger,
  ) {
    if (cfg.webhookUrl !== undefined && cfg.webhookUrl !== '') {
      let url: URL;
      try {
        url = new URL(cfg.webhookUrl);
      } catch {
        throw new Error('TRANSFER_POLICY_URL must be an http:// or https:// URL');
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new Error('TRANSFER_POLICY_URL must be an http:// or https:// URL');
      }
      this.webhookUrl = cfg.webhookUrl;
      this.webhookForLogs = `${url.origin}${url.pathname}`;
    }
  }

  async evaluate(t: TransferDescription): Promise<PolicyDecision> {
    const started = Date.now();
    let decision: PolicyDecision;
    let consulted = false;
    try {
      decision = checkDestination(t.destination);
      if (decision.allowed) decision = checkLists(t.destination, this.cfg);
      if (decision.allowed) decision = checkLoop(t);
      if (decision.allowed && this.webhookUrl !== undefined) {
        consulted = true;
        decision = await this.askWebhook(this.webhookUrl, t);
      }
    } catch (err) {
      // Not expected; fail closed all the same.
      decision = deny(consulted ? 'webhook-error' : 'invalid', `policy check failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.log(t, decision, consulted, Date.now() - started);
    return decision;
  }

  private async askWebhook(url: string, t: TransferDescription): Promise<PolicyDecision> {
    const timeoutMs = this.cfg.webhookTimeoutMs;
    // axios's timeout is an idle timeout on the socket; the abort signal
    // bounds the whole exchange, so a server trickling bytes cannot stall
    // the REFER either.
    const deadline = AbortSignal.timeout(timeoutMs);
    try {
      const res = await axios.post<string>(url, webhookBody(t), {
        headers: { 'content-type': 'application/json' },
        timeout: timeoutMs,
        signal: deadline,
        validateStatus: () => true,
        // The body is parsed here, so a malformed one is told apart from a
        // transport failure.
        responseType: 'text',
        transformResponse: [(data: unknown) => data],
        maxContentLength: MAX_WEBHOOK_RESPONSE_BYTES,
        // A redirected POST turns into a GET elsewhere: an answer, not a hop.
        maxRedirects: 0,
      });
      if (res.status < 200 || res.status > 299) return deny('webhook-error', `policy webhook answered ${res.status}`);
      const verdict = parseVerdict(typeof res.data === 'string' ? res.data : '');
      if (!verdict) return deny('webhook-error', 'policy webhook answered no {"allow": boolean}');
      if (verdict.allow) return verdict.recall ? { allowed: true, recall: verdict.recall } : ALLOWED;
      const reason = verdict.reason ? `: ${preview(verdict.reason, MAX_REASON_CHARS)}` : '';
      return deny('webhook-deny', `policy webhook denied the transfer${reason}`);
    } catch (err) {
      // Only the code survives: axios errors carry the request config, and
      // with it the URL's credentials.
      const code = axios.isAxiosError(err) ? err.code : undefined;
      if (deadline.aborted || code === 'ECONNABORTED' || code === 'ETIMEDOUT') {
        return deny('webhook-error', `policy webhook timed out after ${timeoutMs} ms`);
      }
      return deny('webhook-error', `policy webhook failed: ${code ?? 'unknown error'}`);
    }
  }

  private log(t: TransferDescription, decision: PolicyDecision, consulted: boolean, durationMs: number): void {
    const fields = {
      kind: t.kind,
      // pino escapes control characters; only the length needs bounding.
      destination: truncate(t.destination),
      transfererChannel: t.transferer.channelId,
      bridgeId: t.bridgeId,
      ...(consulted ? { webhook: this.webhookForLogs } : {}),
      durationMs,
    };
    if (decision.allowed) {
      this.logger.info(fields, 'transfer destination allowed');
    } else {
      this.logger.warn({ ...fields, rule: decision.rule, detail: decision.detail }, 'transfer destination denied');
    }
  }
}

// Absent values are sent as null, so that every field is always present
// for the webhook's author.
function webhookBody(t: TransferDescription) {
  return {
    type: 'transfer.policy',
    kind: t.kind,
    destination: t.destination,
    transferer: partyBody(t.transferer),
    transferees: t.transferees.map(partyBody),
    bridgeId: t.bridgeId ?? null,
  };
}

function partyBody(p: PartyDescription) {
  return {
    channelId: p.channelId,
    name: p.name,
    endpoint: p.endpoint ?? null,
    callId: p.callId ?? null,
    callerId: { name: p.callerId.name, number: p.callerId.number },
  };
}
