// Channel variables and the few dialplan functions the emulator can read
// (`GET /channels/{id}/variable`, ari.conf channelvars).

import type { CallerId } from '../../src/ari/models.js';
import type { ChannelRecord } from './types.js';

export type VariableRead =
  | { ok: true; value: string }
  | { ok: false; kind: 'function-error' | 'not-found' };

/**
 * Reads a variable or function the way ast_func_read2()/ast_str_retrieve_variable()
 * would for our channels. Anything ending in `)` is a function; unknown functions and
 * functions that do not apply to the channel fail like Asterisk's
 * "Unable to read provided function" (callid-local.rest.jsonl: CHANNEL(pjsip,call-id) on a
 * Local channel; blind-answered.rest.jsonl: PJSIP_TRANSFER_HANDLING() is write-only).
 */
export function readChannelVariable(ch: ChannelRecord, variable: string): VariableRead {
  const name = variable.trim();
  if (name.endsWith(')')) return readFunction(ch, name);
  const value = ch.variables.get(name);
  return value === undefined ? { ok: false, kind: 'not-found' } : { ok: true, value };
}

function readFunction(ch: ChannelRecord, expr: string): VariableRead {
  const m = /^([A-Za-z_]+)\((.*)\)$/.exec(expr);
  if (!m) return { ok: false, kind: 'function-error' };
  const fn = (m[1] ?? '').toUpperCase();
  const args = (m[2] ?? '').split(',').map((a) => a.trim());
  const fail: VariableRead = { ok: false, kind: 'function-error' };

  if (fn === 'CHANNEL') {
    const what = (args[0] ?? '').toLowerCase();
    if (what === 'name') return { ok: true, value: ch.name };
    if (what === 'uniqueid') return { ok: true, value: ch.id };
    if (what === 'state') return { ok: true, value: ch.state };
    if (what === 'language') return { ok: true, value: ch.language };
    if (what === 'pjsip') {
      if (ch.tech !== 'PJSIP' || !ch.dialog) return fail;
      const field = (args[1] ?? '').toLowerCase();
      if (field === 'call-id') return { ok: true, value: ch.dialog.callId };
      if (field === 'local_tag') return { ok: true, value: ch.dialog.localTag };
      if (field === 'remote_tag') return { ok: true, value: ch.dialog.remoteTag };
      return fail;
    }
    return fail;
  }
  if (fn === 'CALLERID') {
    const what = (args[0] ?? '').toLowerCase();
    if (what === 'name') return { ok: true, value: ch.caller.name };
    if (what === 'num' || what === 'number') return { ok: true, value: ch.caller.number };
    if (what === 'all') {
      const v = ch.caller.name ? `"${ch.caller.name}" <${ch.caller.number}>` : ch.caller.number;
      return { ok: true, value: v };
    }
    return fail;
  }
  if (fn === 'PJSIP_HEADER') {
    // Seen in the traces only for inbound channels: PJSIP_HEADER(read,Call-ID) = the INVITE's Call-ID.
    // Decided: outbound channels have no received INVITE to read from, so the read fails.
    if (ch.tech !== 'PJSIP' || !ch.dialog || ch.direction !== 'inbound') return fail;
    if ((args[0] ?? '').toLowerCase() === 'read' && (args[1] ?? '').toLowerCase() === 'call-id') {
      return { ok: true, value: ch.dialog.callId };
    }
    return fail;
  }
  return fail;
}

export type IdentityWrite = { kind: 'connected' | 'caller'; id: CallerId; indicate: boolean };

/**
 * `CONNECTEDLINE(all[,i])` and `CALLERID(all)` writes, the value parsed as
 * ast_callerid_parse does for `"Name" <number>` and `<number>` (quotes and
 * backslashes unescaped); anything else is not one of these (undefined).
 * connected-line/README.md: a set reaches that channel's phone, `i` keeps it
 * from the phone.
 */
export function writeIdentityFunction(variable: string, value: string): IdentityWrite | undefined {
  const m = /^(CONNECTEDLINE|CALLERID)\(\s*all\s*(?:,\s*(i)\s*)?\)$/i.exec(variable.trim());
  if (!m) return undefined;
  const v = /^\s*(?:"((?:[^"\\]|\\.)*)"\s*)?<([^<>]*)>\s*$/.exec(value);
  const id: CallerId = v ? { name: (v[1] ?? '').replace(/\\(.)/g, '$1'), number: v[2] ?? '' } : { name: value.trim(), number: '' };
  return { kind: m[1]!.toUpperCase() === 'CONNECTEDLINE' ? 'connected' : 'caller', id, indicate: m[2] === undefined };
}
