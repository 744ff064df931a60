// Reads SIPp's message trace (-trace_msg): what a phone sent and received.
// Pure text parsing, so it is tested on the recorded traces in npm test.

export interface SipMessage {
  direction: 'sent' | 'received';
  /** Request method, or undefined for a response. */
  method: string | undefined;
  /** Response status, or undefined for a request. */
  status: number | undefined;
  cseqMethod: string | undefined;
  callId: string | undefined;
  headers: Map<string, string>;
  body: string;
}

const SEPARATOR = /^-{20,} \S+ \S+\s*$/m;

export function parseSippMessages(log: string): SipMessage[] {
  const messages: SipMessage[] = [];
  for (const block of log.split(SEPARATOR)) {
    const dir = /^\s*UDP message (sent|received)/.exec(block);
    if (!dir) continue;
    // The message starts after the "UDP message ..." line and one blank line.
    const text = block.slice(block.indexOf('\n', block.indexOf('UDP message')) + 1).replace(/^\r?\n/, '');
    const [head = '', ...rest] = text.split(/\r?\n\r?\n/);
    const [startLine = '', ...headerLines] = head.split(/\r?\n/);
    const headers = new Map<string, string>();
    for (const line of headerLines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const response = /^SIP\/2\.0 (\d{3})/.exec(startLine);
    messages.push({
      direction: dir[1] as 'sent' | 'received',
      method: response ? undefined : startLine.split(' ')[0],
      status: response ? Number(response[1]) : undefined,
      cseqMethod: headers.get('cseq')?.split(/\s+/)[1],
      callId: headers.get('call-id'),
      headers,
      body: rest.join('\n\n').trim(),
    });
  }
  return messages;
}

export interface TimedSipMessage extends SipMessage {
  /** When sipp logged it, in ms since the epoch (µs precision); sipp's clock read as UTC, as this machine's is. */
  at: number;
}

/** parseSippMessages, with the time sipp logged each message. */
export function parseTimedSippMessages(log: string): TimedSipMessage[] {
  const parts = log.split(/^-{20,} (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(\.\d+)\s*$/m);
  const out: TimedSipMessage[] = [];
  for (let i = 1; i + 3 < parts.length; i += 4) {
    const at = Date.parse(`${parts[i]}T${parts[i + 1]}Z`) + Number(parts[i + 2]) * 1000;
    for (const m of parseSippMessages(parts[i + 3] ?? '')) out.push({ ...m, at });
  }
  return out;
}

/** The sipfrag status codes of the NOTIFYs a phone received, in order. */
export function receivedSipfrags(messages: SipMessage[]): number[] {
  return messages
    .filter((m) => m.direction === 'received' && m.method === 'NOTIFY' && /message\/sipfrag/i.test(m.headers.get('content-type') ?? ''))
    .map((m) => Number(/^SIP\/2\.0 (\d{1,3})/.exec(m.body)?.[1] ?? NaN));
}

/** Requests of this method the phone received (e.g. BYE from Asterisk). */
export function received(messages: SipMessage[], method: string): SipMessage[] {
  return messages.filter((m) => m.direction === 'received' && m.method === method);
}

/**
 * The connected-line updates a phone received, in order: each in-dialog
 * re-INVITE (its To has a tag) or UPDATE, as its method and
 * P-Asserted-Identity, and whether the phone answered it 200.
 */
export function receivedIdentityUpdates(messages: SipMessage[]): { method: string; pai: string | undefined; answered: boolean }[] {
  return messages
    .filter((m) => m.direction === 'received' && (m.method === 'UPDATE' || (m.method === 'INVITE' && /;\s*tag=/.test(m.headers.get('to') ?? ''))))
    .map((m) => ({
      method: m.method!,
      pai: m.headers.get('p-asserted-identity'),
      answered: messages.some((r) => r.direction === 'sent' && r.status === 200 && r.headers.get('cseq') === m.headers.get('cseq') && r.callId === m.callId),
    }));
}
