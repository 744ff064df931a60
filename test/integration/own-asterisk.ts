// For a test file that starts an Asterisk of its own (local-asterisk.ts, free
// ports) from a copy of asterisk-config/ changed by `configure`: its suites
// are declared with onOwnAsterisk (skipped, with the reason, when there is no
// Asterisk here) and start it in their beforeAll.
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';
import { findAsterisk, LocalAsterisk } from './local-asterisk.js';

const CONFIG_DIR = fileURLToPath(new URL('../../asterisk-config', import.meta.url));

const install = (() => {
  try {
    return findAsterisk();
  } catch (err) {
    return (err as Error).message;
  }
})();

export const onOwnAsterisk = typeof install === 'string' ? describe.skip : describe;

/** Starts this file's Asterisk (its suites are skipped when there is none). */
export function startOwnAsterisk(configure: (etc: string) => void): Promise<LocalAsterisk> {
  if (typeof install === 'string') throw new Error(`no local Asterisk: ${install}`);
  return LocalAsterisk.start(install, CONFIG_DIR, { configure });
}
