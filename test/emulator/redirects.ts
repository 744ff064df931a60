// POST /channels/{id}/redirect on a PJSIP channel: Asterisk REFERs the
// channel's far end, and the far end answers. As recorded on Asterisk
// 22.10.1 (test/fixtures/traces/refer-out/README.md):
//  - ARI emits nothing about the REFER: no event for its answer or NOTIFYs;
//  - the channel's command queue waits for the REFER's outcome: later
//    commands on it (e.g. a synchronous answer) run once the far end's final
//    NOTIFY is in, or its error response; but a channel in a bridge whose
//    far end refuses may stay stuck until it is gone (a race: modelled stuck);
//  - a far end that takes the call hangs it up itself (BYE) after its final
//    NOTIFY: the channel's ordinary far-end hangup, cause 16.
import type { AriState } from './state.js';
import type { ChannelRecord, ReferAnswer, ReferOutRecord } from './types.js';
import type { Scheduler } from './util.js';

/** The far end's timings when told only to accept: final NOTIFY 5 ms after the REFER, BYE 2 ms after it. */
const ACCEPT_DEFAULTS = { finalAfterMs: 5, byeAfterMs: 2 };

export class Redirects {
  private readonly answers = new Map<string, ReferAnswer>();
  /** Every REFER sent, in order. */
  readonly sent: ReferOutRecord[] = [];
  /** Per channel: frees its command queue once the REFER's outcome is known (or it is gone). */
  private readonly waiting = new Map<string, () => void>();

  constructor(
    private readonly state: AriState,
    private readonly scheduler: Scheduler,
  ) {
    state.beforeDestroy.push((ch) => this.release(ch.id));
  }

  /** How the far end of PJSIP/<endpoint>'s calls answers a REFER. Not told: it refuses (403). *Decided.* */
  setAnswer(endpoint: string, answer: ReferAnswer): void {
    this.answers.set(endpoint, answer);
  }

  /**
   * The REFER to `resource` (what followed PJSIP/): an endpoint name gives
   * that endpoint's contact (here sip:<name>@127.0.0.1, *decided*), anything
   * else is the Refer-To as is. Resolves when the channel's command queue may
   * go on.
   */
  refer(ch: ChannelRecord, resource: string): Promise<void> {
    const referTo = /^sips?:/i.test(resource) ? resource : `sip:${resource}@127.0.0.1`;
    const answer = this.answers.get(ch.endpoint) ?? { kind: 'refuse', status: 403 };
    this.sent.push({ channelId: ch.id, endpoint: ch.endpoint, referTo, answer: answer.kind === 'accept' ? 200 : (answer.status ?? 403) });
    const freed = new Promise<void>((resolve) => this.waiting.set(ch.id, resolve));
    if (answer.kind === 'accept') {
      const { finalAfterMs, byeAfterMs } = { ...ACCEPT_DEFAULTS, ...answer };
      this.scheduler.after(finalAfterMs, () => this.release(ch.id));
      this.scheduler.after(finalAfterMs + byeAfterMs, () => {
        const live = this.state.channels.get(ch.id);
        if (live) this.state.hangup(live, { by: 'phone', request: {}, cause: 16 });
      });
    } else if (!ch.bridgeId) {
      this.scheduler.after(1, () => this.release(ch.id));
    }
    // Refused while bridged: the queue stays stuck until the channel is gone (recorded in 5 of 9 runs; the worse case of a race).
    return freed;
  }

  private release(channelId: string): void {
    const free = this.waiting.get(channelId);
    this.waiting.delete(channelId);
    free?.();
  }
}
