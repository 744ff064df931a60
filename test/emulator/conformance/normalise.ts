// Making a recorded and an emulated event stream comparable value by value:
// identities (channel and bridge ids, Call-IDs, SIP tags, the counter in channel
// names) become tokens numbered by first appearance, clocks become `<time>` after
// their format is checked, a bridge's `channels` are compared as a set; everything else
// (states, caller, connected, technology, causes, dialplan, args ...) must be equal.

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const ASTERISK_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$/;
const ENTITY_ID = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
/** `PJSIP/alice-0000000a`, `Local/echo@internal-00000000;1`, `Announcer/ARI_MOH-00000000;2`. */
const CHANNEL_NAME = /^([A-Za-z]+\/.+)-([0-9a-f]{8})(;[12])?$/;

/** One per stream: the same identity always gets the same token. */
export class Normaliser {
  private readonly tokens = new Map<string, Map<string, string>>();
  readonly problems: string[] = [];

  private token(kind: string, value: string): string {
    let m = this.tokens.get(kind);
    if (!m) this.tokens.set(kind, (m = new Map()));
    let t = m.get(value);
    if (!t) m.set(value, (t = `<${kind}${m.size + 1}>`));
    return t;
  }

  /** The normalised copy of `value`, found under `key` at `path`. */
  normalise(value: Json, key = '', path = '$'): Json {
    if (Array.isArray(value)) {
      // A bridge's members come from a hash container: their order means nothing.
      if (key === 'channels') return value.map((v) => (typeof v === 'string' ? this.token('id', v) : this.normalise(v, '', path))).sort();
      return value.map((v, i) => this.normalise(v, '', `${path}[${i}]`));
    }
    if (value !== null && typeof value === 'object') {
      const out: { [k: string]: Json } = {};
      for (const [k, v] of Object.entries(value)) out[k] = this.normalise(v, k, `${path}.${k}`);
      return out;
    }
    if (typeof value !== 'string') return value;
    switch (key) {
      case 'timestamp':
      case 'creationtime':
      case 'startup_time':
      case 'last_reload_time':
        if (!ASTERISK_TIME.test(value)) this.problems.push(`${path}: ${JSON.stringify(value)} is not an Asterisk timestamp`);
        return '<time>';
      case 'asterisk_id':
      case 'entity_id':
        if (!ENTITY_ID.test(value)) this.problems.push(`${path}: ${JSON.stringify(value)} is not an entity id`);
        return '<entity>';
      case 'id':
        return this.token('id', value);
      case 'protocol_id':
        return value === '' ? '' : this.token('callid', value);
      case 'parameter_value':
        return this.token('tag', value);
      case 'name':
      case 'value':
        return this.channelName(value) ?? (key === 'value' ? this.token('value', value) : value);
      default:
        return value;
    }
  }

  /** `PJSIP/alice-0000000a` → `PJSIP/alice-<seq1>`; undefined when not a channel name. */
  private channelName(value: string): string | undefined {
    const m = CHANNEL_NAME.exec(value);
    return m ? `${m[1]}-${this.token('seq', m[2]!)}${m[3] ?? ''}` : undefined;
  }
}

function kind(v: Json): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Differences between two (normalised) JSON values, key order included; empty when equal. */
export function diff(rec: Json, emu: Json, path = '$'): string[] {
  if (kind(rec) !== kind(emu)) return [`${path}: recorded ${JSON.stringify(rec)}, emulator ${JSON.stringify(emu)}`];
  if (Array.isArray(rec) && Array.isArray(emu)) {
    const out: string[] = [];
    if (rec.length !== emu.length) out.push(`${path}: recorded ${JSON.stringify(rec)}, emulator ${JSON.stringify(emu)}`);
    for (let i = 0; i < Math.min(rec.length, emu.length); i++) out.push(...diff(rec[i]!, emu[i]!, `${path}[${i}]`));
    return out;
  }
  if (kind(rec) === 'object') {
    const r = rec as Record<string, Json>;
    const e = emu as Record<string, Json>;
    const out: string[] = [];
    const rk = Object.keys(r);
    const ek = Object.keys(e);
    if (rk.join(',') !== ek.join(',')) out.push(`${path}: keys recorded [${rk.join(',')}], emulator [${ek.join(',')}]`);
    for (const k of rk) if (k in e) out.push(...diff(r[k]!, e[k]!, `${path}.${k}`));
    return out;
  }
  return rec === emu ? [] : [`${path}: recorded ${JSON.stringify(rec)}, emulator ${JSON.stringify(emu)}`];
}
