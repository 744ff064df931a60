// A carrier trunk for the REFER-out tests, added to a test's own copy of
// asterisk-config/ (the shipped test profile has phones only): endpoint
// "carrier", matched by the From user as the phones are, its calls into the
// same Stasis application, its AOR at the spare phone 1004's port (where the
// SIPp "carrier" runs, so PJSIP/carrier, the endpoint-name form of a
// redirect, names it).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const CARRIER = 'carrier';

export function addCarrierTrunk(etc: string): void {
  const file = join(etc, 'pjsip.conf');
  const text = readFileSync(file, 'utf8');
  const contact = /^contact = sip:1004@127\.0\.0\.1:(\d+)$/m.exec(text);
  if (!contact) throw new Error(`${file}: no contact for 1004; asterisk-config changed?`);
  writeFileSync(
    file,
    `${text}
; Added by test/integration/carrier-trunk.ts: a carrier's trunk.
[${CARRIER}](phone-endpoint)
aors = ${CARRIER}
[${CARRIER}](phone-aor)
contact = sip:${CARRIER}@127.0.0.1:${contact[1]}
`,
  );
}
