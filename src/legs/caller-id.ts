// The caller id a new leg is dialled with, taken from a party's channel:
// routed calls show the caller's, blind transfers the configured party's.
import type { ChannelRecord } from '../registry/types.js';

/** ARI's callerId form, "Name <number>". */
export function callerIdOf(c: ChannelRecord | undefined): string | undefined {
  if (!c || (!c.caller.name && !c.caller.number)) return undefined;
  const name = c.caller.name.replaceAll('"', '');
  return name ? `"${name}" <${c.caller.number}>` : `<${c.caller.number}>`;
}
