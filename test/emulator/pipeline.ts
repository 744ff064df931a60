// The way every REST request goes, whichever socket it came on (HTTP, or the events
// WebSocket): fault injection, the per-channel command queues, the order of response and
// events, the router, and the request log.

import type { EventHub } from './events.js';
import { ResponseOrder } from './order.js';
import type { RestRequest, RestResponse, RestRouter } from './rest.js';
import type { DelayInjection, FailureInjection, RandomFailure, RequestHook, RequestMatch, RequestRecord, ResponseFirst } from './types.js';
import { reasonPhrase } from './util.js';
import { seededRandom } from '../helpers/seeded-random.js';

export interface PipelineOptions {
  router: RestRouter;
  hub: EventHub;
  /** Seeds the per-request choice of events first or response first (AriEmulatorOptions.orderSeed). */
  orderSeed?: number;
}

/** A request as a front hands it over: authenticated, body parsed. */
export interface IncomingRequest {
  method: string;
  /** Path below /ari as received (not decoded), e.g. `/channels/abc/answer`. */
  path: string;
  query: Record<string, string>;
  body: Record<string, unknown> | undefined;
  /** Set for requests that came on the events WebSocket. */
  via?: 'websocket';
}

/**
 * Sends the answer the front's way; resolves once it has been handed to the socket (or
 * the client is gone). Held events of a response-first request follow that moment.
 */
export type Answer = (out: RestResponse) => Promise<void>;

/** What Asterisk answers a body it cannot parse. */
export const BAD_BODY: RestResponse = { status: 400, body: { message: 'Error parsing request body' } };

export class RequestPipeline {
  readonly requests: RequestRecord[] = [];
  private readonly failures: (FailureInjection & { remaining: number })[] = [];
  private readonly delays: (DelayInjection & { remaining: number })[] = [];
  private readonly hooks: (RequestHook & { remaining: number })[] = [];
  private readonly responseFirsts: (ResponseFirst & { remaining: number })[] = [];
  private random: (RandomFailure & { next: () => number }) | undefined;
  /** Per-request order of response and events; undefined: events first, always. */
  private readonly order: ResponseOrder | undefined;
  /** Timers of late answers with their waiters, told `false` when the emulator closes. */
  private readonly lateTimers = new Map<NodeJS.Timeout, (ok: boolean) => void>();
  /** Per channel id: the last command queued behind a late one (see delayNext). */
  private readonly channelQueues = new Map<string, Promise<void>>();

  constructor(private readonly opts: PipelineOptions) {
    this.order = opts.orderSeed === undefined ? undefined : new ResponseOrder(opts.orderSeed, opts.hub);
  }

  failNext(f: FailureInjection): void {
    this.failures.push({ ...f, method: f.method.toUpperCase(), remaining: f.times ?? 1 });
  }

  delayNext(d: DelayInjection): void {
    this.delays.push({ ...d, method: d.method.toUpperCase(), remaining: d.times ?? 1 });
  }

  beforeNext(h: RequestHook): void {
    this.hooks.push({ ...h, method: h.method.toUpperCase(), remaining: h.times ?? 1 });
  }

  respondFirst(r: ResponseFirst): void {
    this.responseFirsts.push({ ...r, method: r.method.toUpperCase(), remaining: r.times ?? 1 });
  }

  failRandomly(f: RandomFailure | undefined): void {
    if (!f) {
      this.random = undefined;
      return;
    }
    if (!(f.rate >= 0 && f.rate <= 1)) throw new Error(`ARI emulator: failRandomly rate must be in [0, 1], got ${f.rate}`);
    this.random = { ...f, methods: f.methods?.map((m) => m.toUpperCase()), next: seededRandom(f.seed ?? 1) };
  }

  /** The emulator closes: late answers and held events are dropped, their requests never answered. */
  close(): void {
    this.order?.close();
    for (const [t, resolve] of this.lateTimers) {
      clearTimeout(t);
      resolve(false);
    }
    this.lateTimers.clear();
  }

  /** An answer given before any injection applies (no credentials, a body that does not parse): logged and sent. */
  async refuse(req: IncomingRequest, out: RestResponse, answer: Answer): Promise<void> {
    this.record(req, out.status);
    await answer(out);
  }

  /**
   * Carries out one request and answers it; resolves once the answer was handed to the
   * socket (at once when the emulator closed meanwhile).
   */
  async run(req: IncomingRequest, answer: Answer): Promise<void> {
    const { method, path, query } = req;
    const hook = this.take(this.hooks, method, path, query);
    const runHook = (): void => {
      if (!hook) return;
      try {
        hook.run();
      } catch (err) {
        console.error('[ari-emulator] beforeNext step failed:', err);
      }
    };

    const injected = this.take(this.failures, method, path, query) ?? this.randomFailure(method, path);
    if (injected) {
      runHook();
      if (injected.delayMs && !(await this.late(injected.delayMs))) return;
      this.record(req, injected.status, 'failure');
      await answer({ status: injected.status, body: { message: injected.message ?? reasonPhrase(injected.status) } });
      return;
    }

    const restReq: RestRequest = { method, path, query, body: req.body };
    const delay = this.take(this.delays, method, path, query);
    const effectLate = delay !== undefined && (delay.effect ?? 'on-response') === 'on-response';
    // The events of an 'on-arrival' delay go out at once, only the answer is late.
    const orderFree = delay?.effect !== 'on-arrival';
    const forced = this.take(this.responseFirsts, method, path, query);
    let release: (() => void) | undefined;
    const carryOut = (): RestResponse => {
      runHook();
      if (forced) release = this.opts.hub.holdDelivery();
      else release = orderFree ? this.order?.draw() : undefined;
      return this.handle(release ? { ...restReq, responseFirst: true } : restReq);
    };
    // A channel's commands run one at a time, in order (res_stasis control queue): while a
    // late request on a channel is not carried out yet, later commands on it wait behind it.
    const channels = commandChannels(method, path, query);
    const ahead = channels.flatMap((id) => this.channelQueues.get(id) ?? []);
    let out: RestResponse;
    if (!effectLate && ahead.length === 0) {
      out = carryOut();
    } else {
      let done!: () => void;
      const mine = new Promise<void>((r) => (done = r));
      for (const id of channels) this.channelQueues.set(id, mine);
      await Promise.all(ahead);
      if (effectLate && !(await this.late(delay.delayMs))) return;
      out = carryOut();
      done();
      for (const id of channels) if (this.channelQueues.get(id) === mine) this.channelQueues.delete(id);
    }
    if (out.holdsQueueUntil) {
      const held = out.holdsQueueUntil;
      const { holdsQueueUntil: _, ...response } = out;
      out = response;
      for (const id of channels) this.channelQueues.set(id, held);
      void held.then(() => {
        for (const id of channels) if (this.channelQueues.get(id) === held) this.channelQueues.delete(id);
      });
    }
    if (delay?.effect === 'on-arrival' && !(await this.late(delay.delayMs))) return;
    this.record(req, out.status, delay ? 'delay' : undefined, release ? 'response-first' : undefined);
    const written = answer(out);
    if (release && forced) {
      // respondFirst: the held events go exactly `eventsAfterMs` after the response was written.
      const go = release;
      void written.then(async () => {
        if (await this.late(forced.eventsAfterMs)) go();
      });
    } else if (release) {
      this.order?.releaseAfter(written, release);
    }
    await written;
  }

  private record(req: IncomingRequest, status: number, injected?: RequestRecord['injected'], order?: RequestRecord['order']): void {
    this.requests.push({
      method: req.method,
      path: safeDecodePath(req.path),
      query: req.query,
      status,
      ...(injected ? { injected } : {}),
      ...(order ? { order } : {}),
      ...(req.via ? { via: req.via } : {}),
    });
  }

  private handle(req: RestRequest): RestResponse {
    try {
      return this.opts.router.handle(req);
    } catch (err) {
      console.error('[ari-emulator] handler crashed:', err);
      return { status: 500, body: { message: 'Internal Server Error' } };
    }
  }

  /** Waits `ms`; false when the emulator closed meanwhile (the request is then dropped). */
  private late(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.lateTimers.delete(t);
        resolve(true);
      }, ms);
      this.lateTimers.set(t, resolve);
    });
  }

  private randomFailure(method: string, path: string): FailureInjection | undefined {
    const r = this.random;
    if (!r) return undefined;
    const decoded = safeDecodePath(path);
    const matches = (re: RegExp) => re.test(path) || re.test(decoded);
    if (r.methods && !r.methods.includes(method)) return undefined;
    if (r.path && !matches(r.path)) return undefined;
    if (r.exclude?.some(matches)) return undefined;
    if (r.next() >= r.rate) return undefined;
    const status = r.status ?? 500;
    return { method, path: /.*/, status, ...(r.message ? { message: r.message } : {}) };
  }

  /** The first injection of `list` matching the request, counted down (and removed when used up). */
  private take<T extends RequestMatch & { remaining: number }>(
    list: T[],
    method: string,
    path: string,
    query: Record<string, string>,
  ): T | undefined {
    const decoded = safeDecodePath(path);
    const i = list.findIndex(
      (f) =>
        f.method === method &&
        (f.path.test(path) || f.path.test(decoded)) &&
        Object.entries(f.query ?? {}).every(([k, v]) => query[k] === v),
    );
    if (i < 0) return undefined;
    const f = list[i]!;
    f.remaining--;
    if (f.remaining <= 0) list.splice(i, 1);
    return f;
  }
}

/** JSON object bodies and form bodies both carry parameters in ARI; throws on a JSON body that does not parse. */
export function parseBody(raw: string, contentType: string | undefined): Record<string, unknown> | undefined {
  if (!raw.trim()) return undefined;
  const type = (contentType ?? '').toLowerCase();
  if (type.includes('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(raw));
  }
  const parsed: unknown = JSON.parse(raw);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  return parsed as Record<string, unknown>;
}

/**
 * The channels whose control queue a request goes through: `/channels/{id}/...` commands
 * and the `channel` list of bridge commands. Reads (GET) and the hangup itself
 * (`DELETE /channels/{id}`, a soft hangup, not a queued command) do not wait.
 */
function commandChannels(method: string, path: string, query: Record<string, string>): string[] {
  if (method === 'GET') return [];
  const seg = safeDecodePath(path).split('/').filter(Boolean);
  if (seg[0] === 'channels' && seg[1] !== undefined) return method === 'DELETE' && seg.length === 2 ? [] : [seg[1]];
  if (seg[0] === 'bridges' && query.channel) return query.channel.split(',').map((c) => c.trim()).filter(Boolean);
  return [];
}

function safeDecodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
