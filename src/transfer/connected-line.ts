// Who each remaining phone is told it talks to once a transfer is complete
// (TRANSFER_CONNECTED_LINE): the value of CONNECTEDLINE(all) set on each
// party's channel. Setting it on a channel updates that channel's own phone
// only (test/fixtures/traces/connected-line/README.md), so each side gets
// the other side's identity. Pure: the runner reads the parties and sets.
//
// A party's identity: a channel that called in is its caller id; a leg we
// dialled carries the caller's id as its caller id and connected line, so
// its party is the number we dialled (DIALLED_PARTY_VAR on the leg).
//
// Asterisk itself, whenever a bridge becomes two-party because a channel
// left it (the transferer hung up after the 200), tells each of the two
// the other's *caller id*: for a dialled leg the caller's (alice told she
// talks to herself). So before anyone leaves, such a leg's caller id is set
// to its party's identity (callerIdFixes); Asterisk's own update then says
// what ours says, and ours, set after the leave, is dropped as redundant.
import type { CallerId } from '../ari/models.js';

export interface Party {
  channelId: string;
  caller: CallerId;
  /** Set on a leg we dialled: the number dialled. */
  dialled: string | undefined;
}

export interface ConnectedLineSet {
  channelId: string;
  /** The value of CONNECTEDLINE(all): `"Name" <number>` or `<number>`. */
  value: string;
}

export interface ConnectedLineDecision {
  sets: ConnectedLineSet[];
  /** Why a phone is told nothing. */
  skipped: string[];
}

/** The party behind a channel. */
export function identityOf(party: Party): CallerId {
  return party.dialled ? { name: '', number: party.dialled } : party.caller;
}

// What a phone can be told: a number Asterisk parses back unchanged
// (ast_callerid_parse cuts at the last "<") and SIP can carry as a user part.
const NUMBER = /^[0-9A-Za-z*#+._-]{1,64}$/;

/**
 * CONNECTEDLINE(all)'s value for an identity, or undefined if it cannot be
 * said (no number: Asterisk would send the phone nothing useful). Names come
 * from phones: control characters go, quotes and backslashes are escaped
 * (ast_callerid_parse unescapes them), the rest is kept as it is.
 */
export function connectedLineValue(id: CallerId): string | undefined {
  if (!NUMBER.test(id.number)) return undefined;
  // eslint-disable-next-line no-control-regex
  const name = id.name.replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 80);
  if (name === '') return `<${id.number}>`;
  return `"${name.replace(/[\\"]/g, (c) => `\\${c}`)}" <${id.number}>`;
}

/**
 * Each of the two sides now talking is told the other's identity. Only a
 * one-to-one call has one "other party": with several on a side nobody is
 * told anything. A phone is never told it talks to itself, nor to one of
 * `gone` (the transferer's numbers: a leg dialled by another application
 * for the transferer's call carries the transferer's caller id).
 */
export function decideConnectedLines(a: Party[], b: Party[], gone: string[] = []): ConnectedLineDecision {
  if (a.length !== 1 || b.length !== 1) return { sets: [], skipped: [`not a two-party call (${a.length} with ${b.length})`] };
  const [one, other] = [a[0]!, b[0]!];
  const decision: ConnectedLineDecision = { sets: [], skipped: [] };
  for (const [to, about] of [
    [one, other],
    [other, one],
  ] as const) {
    const value = connectedLineValue(identityOf(about));
    if (value === undefined) decision.skipped.push(`${to.channelId}: ${about.channelId} has no number to show`);
    else if (identityOf(about).number === identityOf(to).number) decision.skipped.push(`${to.channelId}: the other party has its own number`);
    else if (gone.includes(identityOf(about).number)) decision.skipped.push(`${to.channelId}: the other party has the transferer's number`);
    else decision.sets.push({ channelId: to.channelId, value });
  }
  return decision;
}

/** CALLERID(all) values that make a dialled leg's caller id its party's identity (see the header). */
export function callerIdFixes(parties: Party[]): ConnectedLineSet[] {
  return parties.flatMap((p) => {
    if (p.dialled === undefined || p.caller.number === p.dialled) return [];
    const value = connectedLineValue(identityOf(p));
    return value === undefined ? [] : [{ channelId: p.channelId, value }];
  });
}
