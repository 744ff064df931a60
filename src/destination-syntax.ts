// What a destination may look like before it goes into the dial template:
// the first check of a blind-transfer destination (policy) and of a routed
// call's extension (router), both about to be dialled.
import { preview } from './untrusted-text.js';

/** A refusal carries the policy's `invalid` rule, so the policy can return it as is. */
export type DestinationCheck = { allowed: true } | { allowed: false; rule: 'invalid'; detail: string };

const MAX_DESTINATION = 32;
// Digits, letters (endpoint names), '+' (E.164), '*' and '#' (feature codes),
// and '_', '.', '-'. Nothing that can split or redirect a dial string:
// '&' (several targets), ',' (Dial options), '/' (technology), '@' (another
// endpoint or trunk), '(' ')' ';' ':' spaces, quotes, control characters.
const DESTINATION_CHAR = /^[A-Za-z0-9+*#_.-]$/;

export function checkDestination(destination: string): DestinationCheck {
  if (destination.length === 0) return invalid('destination is empty');
  const chars = Array.from(destination);
  if (chars.length > MAX_DESTINATION) {
    return invalid(`destination is ${chars.length} characters long (at most ${MAX_DESTINATION}): ${preview(destination)}`);
  }
  const position = chars.findIndex((c) => !DESTINATION_CHAR.test(c));
  if (position >= 0) {
    return invalid(
      `destination contains a forbidden character ${describeChar(chars[position]!)} at position ${position + 1}: ${preview(destination)}`,
    );
  }
  return { allowed: true };
}

function invalid(detail: string): DestinationCheck {
  return { allowed: false, rule: 'invalid', detail };
}

function describeChar(c: string): string {
  const code = c.codePointAt(0)!;
  const hex = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  return code > 0x20 && code < 0x7f ? `'${c}' (${hex})` : hex;
}
