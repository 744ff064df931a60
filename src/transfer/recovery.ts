// What survives the service's process: a transfer's state written into
// Asterisk itself, as channel variables, and read back on every (re)connect
// (ari.conf `channelvars` puts them into every channel snapshot, so the
// resync's GET /channels brings them without one request per channel).
//
//  - ARI_TRANSFER on the transferer's channel: a REFER is being handled
//    (written when it arrives; updated once the transferees hear ringback).
//  - ARI_TRANSFER_LEG on a new leg (set by the originate, or on the
//    consultation call's leg taken over): everything needed to finish the
//    transfer of that leg.
//
// `planRecovery` is pure: from Asterisk's channels and bridges it says, per
// transfer nobody in this process is handling, in which state to resume it.
import { z } from 'zod';
import type { Bridge, Channel } from '../ari/models.js';
import type { AttendedPlan } from './attended-plan.js';
import type { LegPlan } from './machine.js';

export const SOURCE_MARK = 'ARI_TRANSFER';
export const LEG_MARK = 'ARI_TRANSFER_LEG';

const legMarkSchema = z.object({
  id: z.string().min(1),
  source: z.string().min(1),
  bridge: z.string().min(1),
  transferees: z.array(z.string()).min(1),
  /** Epoch ms: TRANSFER_TIMEOUT keeps running across a restart. */
  deadline: z.number(),
  decline: z.boolean(),
  replaced: z.string().optional(),
});
export type LegMark = z.infer<typeof legMarkSchema>;

const sourceMarkSchema = z.object({
  id: z.string().min(1),
  /** Known once the transferees hear ringback or music: stopped if the transfer cannot go on. */
  transferees: z.array(z.string()).optional(),
  /**
   * Semi-attended: the consultation call's ringing leg, taken over. Its own
   * mark cannot be written: Asterisk sets variables only on channels in
   * Stasis, which a leg enters when it answers.
   */
  leg: legMarkSchema.extend({ channel: z.string().min(1) }).optional(),
  /**
   * REFER out, once the carrier's call leaves its bridge to be redirected:
   * after a restart the carrier's answer is awaited again (never a second
   * REFER), and a call it kept goes back into `bridge`.
   */
  referOut: z
    .object({ bridge: z.string().min(1), transferees: z.array(z.string()).min(1), destination: z.string().min(1), target: z.string().min(1) })
    .optional(),
  /** Attended, once the moves begin: the plan, to complete them after a restart. */
  plan: z
    .object({
      ok: z.literal(true),
      mode: z.literal('bridged'),
      sourceId: z.string(),
      replacedId: z.string(),
      resolvedBy: z.enum(['asterisk', 'registry']),
      sourceBridgeId: z.string(),
      targetBridgeId: z.string(),
      transfereeIds: z.array(z.string()),
      targetIds: z.array(z.string()),
      moves: z.array(z.object({ channelId: z.string(), from: z.string(), to: z.string() })),
      stopMohOn: z.array(z.string()),
      hangups: z.array(z.string()),
      destroyBridges: z.array(z.string()),
    })
    .optional(),
});
export type SourceMark = z.infer<typeof sourceMarkSchema>;

export function encodeMark(mark: SourceMark | LegMark): string {
  return JSON.stringify(mark);
}

function decode<T>(schema: z.ZodType<T>, raw: string | undefined): T | undefined {
  if (!raw) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export const decodeSourceMark = (raw: string | undefined) => decode(sourceMarkSchema, raw);
export const decodeLegMark = (raw: string | undefined) => decode(legMarkSchema, raw);

export function legMarkOf(transferId: string, plan: LegPlan, deadline: number): LegMark {
  return {
    id: transferId,
    source: plan.sourceId,
    bridge: plan.sourceBridgeId,
    transferees: plan.transfereeIds,
    deadline,
    decline: plan.busyIsDecline,
    ...(plan.replacedId !== undefined ? { replaced: plan.replacedId } : {}),
  };
}

export function legPlanOf(mark: LegMark): LegPlan {
  return {
    sourceId: mark.source,
    sourceBridgeId: mark.bridge,
    transfereeIds: mark.transferees,
    busyIsDecline: mark.decline,
    ...(mark.replaced !== undefined ? { replacedId: mark.replaced } : {}),
  };
}

export type Recovery =
  /** The leg still rings: wait for it until its deadline. */
  | { kind: 'leg-ringing'; transferId: string; leg: Channel; mark: LegMark }
  /** The leg answered but is not with the transferees yet: join it. */
  | { kind: 'leg-answered'; transferId: string; leg: Channel; mark: LegMark }
  /** The leg already talks to the transferees: only the 200 and the hang-ups are left. */
  | { kind: 'leg-joined'; transferId: string; leg: Channel; mark: LegMark }
  /** Attended, killed during its moves: the moves not done yet (none: only the 200 and the hang-ups are left). */
  | { kind: 'moves-interrupted'; transferId: string; sourceId: string; plan: AttendedPlan }
  /** REFER out: the carrier's call was sent back to its carrier: its answer is awaited again. */
  | { kind: 'referring-out'; transferId: string; sourceId: string; leg: LegPlan; target: string }
  /** A REFER with nothing placed for it (or its leg gone): the phone gets 503, ringback stops. */
  | { kind: 'refer-pending'; transferId: string; sourceId: string; transferees: string[] };

export function planRecovery(channels: readonly Channel[], bridges: readonly Bridge[], handled: (sourceId: string) => boolean): Recovery[] {
  const bridgeOf = new Map<string, string>();
  for (const b of bridges) for (const id of b.channels) bridgeOf.set(id, b.id);
  const out: Recovery[] = [];
  const resumed = new Set<string>();
  for (const leg of channels) {
    const mark = decodeLegMark(leg.channelvars?.[LEG_MARK]);
    if (!mark || handled(mark.source)) continue;
    resumed.add(mark.id);
    out.push({ kind: kindOfLeg(leg, mark, bridgeOf), transferId: mark.id, leg, mark });
  }
  const byId = new Map(channels.map((c) => [c.id, c]));
  for (const source of channels) {
    const mark = decodeSourceMark(source.channelvars?.[SOURCE_MARK]);
    if (!mark || resumed.has(mark.id) || handled(source.id)) continue;
    const leg = mark.leg ? byId.get(mark.leg.channel) : undefined;
    if (mark.leg && leg) {
      out.push({ kind: kindOfLeg(leg, mark.leg, bridgeOf), transferId: mark.id, leg, mark: mark.leg });
      continue;
    }
    if (mark.plan) {
      // A move is done when Asterisk shows the channel in its target bridge.
      const moves = mark.plan.moves.filter((m) => bridgeOf.get(m.channelId) !== m.to);
      out.push({ kind: 'moves-interrupted', transferId: mark.id, sourceId: source.id, plan: { ...mark.plan, moves, transfererGone: false } });
      continue;
    }
    if (mark.referOut) {
      const r = mark.referOut;
      const leg: LegPlan = { sourceId: source.id, sourceBridgeId: r.bridge, transfereeIds: r.transferees, destination: r.destination, busyIsDecline: true };
      out.push({ kind: 'referring-out', transferId: mark.id, sourceId: source.id, leg, target: r.target });
      continue;
    }
    out.push({ kind: 'refer-pending', transferId: mark.id, sourceId: source.id, transferees: mark.transferees ?? [] });
  }
  return out;
}

function kindOfLeg(leg: Channel, mark: LegMark, bridgeOf: ReadonlyMap<string, string>): 'leg-ringing' | 'leg-answered' | 'leg-joined' {
  if (leg.state !== 'Up') return 'leg-ringing';
  return bridgeOf.get(leg.id) === mark.bridge ? 'leg-joined' : 'leg-answered';
}
