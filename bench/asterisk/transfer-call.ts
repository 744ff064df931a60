// One transfer on the real Asterisk, played by the integration suite's
// SIPp phones (test/integration/sipp/), whichever application routes and
// transfers the calls:
//  - attended: 1001 (alice) calls 1002 (bob); bob's consultation call
//    (3PCC side B, port "consult") calls 1003 (carol), 300 ms later bob
//    REFERs on his first call with Replaces naming it;
//  - blind: alice calls bob; 1.5 s after answering bob REFERs her to 1003;
//    carol answers at once (no ringing time in the measure).
// Then every call is hung up through ARI and the phones are waited for, so
// that the next transfer starts on a clean Asterisk. Every wait has a deadline.
import type { AsteriskTarget } from '../../test/integration/asterisk-target.js';
import { exitOf, type PhoneOptions, type SippPhone } from '../../test/integration/phones.js';
import { receivedSipfrags } from '../../test/integration/sipp-messages.js';
import { absorbStraySip } from '../../test/integration/stray-sip.js';
import type { AriHttp } from './ari-http.js';
import type { PhonePool } from './phone-pool.js';
import { referTimings, timedSippMessages } from './sipp-timing.js';

export type TransferKind = 'attended' | 'blind';

export interface TransferOutcome {
  kind: TransferKind;
  /** REFER sent → NOTIFY 200 received, at the phone; undefined when it never got a 200. */
  latencyMs: number | undefined;
  /** REFER sent → NOTIFY 100 received. */
  tryingMs: number | undefined;
  /** The sipfrags the transferring phone got, in order. */
  sipfrags: number[];
  /** SIP Call-ID of the REFER's dialog: the subject's channel for it carries it as protocol_id. */
  callId: string | undefined;
  /** When the REFER left the phone, wall-clock ms (for the subjects' own timelines). */
  referSentAt: number | undefined;
  /** Why the transfer does not count, when it does not. */
  problem: string | undefined;
}

const LISTENING_MS = 300;
const REFERER_DEADLINE_MS = 30_000;
const PHONE_EXIT_MS = 5000;
const CLEAN_DEADLINE_MS = 10_000;
const STRAY_SIP_MS = 4000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function playTransfer(kind: TransferKind, t: AsteriskTarget, ari: AriHttp, pool: PhonePool): Promise<TransferOutcome> {
  const phones: SippPhone[] = [];
  const phone = (options: Omit<PhoneOptions, 'port'>, port: number) => {
    const p = pool.start({ ...options, port }, { host: t.sipHost, port: t.sipPort });
    phones.push(p);
    return p;
  };
  const threePcc = `127.0.0.1:${t.phones.threePcc}`;

  let referer: SippPhone;
  if (kind === 'attended') {
    phone({ scenario: 'uas_answer.xml', phone: '1003' }, t.phones['1003']);
    // Side B listens on the 3PCC socket: it starts first.
    phone({ scenario: 'uac_att_consult.xml', phone: '1002', call: '1003', keys: { consult_ms: '300' }, threePcc }, t.phones.consult);
    await sleep(LISTENING_MS);
    referer = phone({ scenario: 'uas_att_referer.xml', phone: '1002', keys: { refer_target: '1003' }, threePcc }, t.phones['1002']);
  } else {
    phone({ scenario: 'uas_answer_late.xml', phone: '1003', keys: { ring_ms: '0' } }, t.phones['1003']);
    referer = phone(
      { scenario: 'uas_blind_referer.xml', phone: '1002', keys: { refer_to: '1003', refer_params: '', refer_extra_header: 'X-Bench: blind' } },
      t.phones['1002'],
    );
  }
  await sleep(LISTENING_MS);
  phone({ scenario: 'uac_call_wait_bye.xml', phone: '1001', call: '1002' }, t.phones['1001']);

  let problem: string | undefined;
  try {
    const code = await exitOf(referer, REFERER_DEADLINE_MS);
    if (code !== 0) problem = `the transferring phone's scenario failed (exit ${code})`;
  } catch (err) {
    problem = (err as Error).message;
  }
  await tearDown(phones, ari);

  // Its trace is complete once the phone has exited (SIPp writes it buffered).
  const messages = timedSippMessages(referer.trace());
  const sipfrags = receivedSipfrags(messages);
  const [refer] = referTimings(messages);
  const latencyMs = refer?.notifies.find((n) => n.status === 200)?.afterMs;
  if (!problem && latencyMs === undefined) problem = `no NOTIFY 200 (sipfrags ${sipfrags.join(', ') || 'none'})`;
  if (problem) problem += `\n${phones.map((p) => p.diagnostics()).join('\n')}`;
  return {
    kind,
    latencyMs: problem ? undefined : latencyMs,
    tryingMs: refer?.notifies.find((n) => n.status === 100)?.afterMs,
    sipfrags,
    callId: refer?.callId,
    // SIPp stamps local time; our clock counts from the epoch.
    referSentAt: refer ? refer.sentAt + new Date(refer.sentAt).getTimezoneOffset() * 60_000 : undefined,
    problem,
  };
}

/** Hangs every call up through ARI while the phones still run (so each BYE is answered), then waits for them and for a clean Asterisk. */
async function tearDown(phones: SippPhone[], ari: AriHttp): Promise<void> {
  await hangUpEverything(ari);
  await Promise.all(phones.map((p) => exitOf(p, PHONE_EXIT_MS).catch(() => p.stop())));
  const killed = phones.filter((p) => p.killed);
  if (killed.length > 0) {
    await Promise.all(killed.map((p) => p.exited));
    await Promise.all(killed.map((p) => absorbStraySip(p.port, STRAY_SIP_MS)));
  }
  const deadline = Date.now() + CLEAN_DEADLINE_MS;
  while (!(await isClean(ari))) {
    if (Date.now() > deadline) throw new Error(`Asterisk still has channels or bridges ${CLEAN_DEADLINE_MS} ms after the transfer`);
    await hangUpEverything(ari);
    await sleep(100);
  }
}

/** Statuses that mean someone else (the subject) is hanging it up or deleting it right now. */
const ALREADY_GOING = [404, 409, 422];

async function hangUpEverything(ari: AriHttp): Promise<void> {
  const gone = (err: unknown) => {
    if (!ALREADY_GOING.includes((err as { status?: number }).status ?? 0)) throw err;
  };
  for (const c of await ari.get<{ id: string }[]>('/channels')) await ari.delete(`/channels/${encodeURIComponent(c.id)}`).catch(gone);
  for (const b of await ari.get<{ id: string }[]>('/bridges')) await ari.delete(`/bridges/${encodeURIComponent(b.id)}`).catch(gone);
}

async function isClean(ari: AriHttp): Promise<boolean> {
  const [channels, bridges] = await Promise.all([ari.get<unknown[]>('/channels'), ari.get<unknown[]>('/bridges')]);
  return channels.length === 0 && bridges.length === 0;
}
