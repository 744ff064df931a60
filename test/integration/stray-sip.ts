// Stops Asterisk's retransmissions to a SIPp phone that was killed mid-call:
// Asterisk resends its BYE to that port for up to 32 s, and the next phone
// started on the port would take the stray BYE as its own call.
import { createSocket } from 'node:dgram';

/** Answers any SIP request reaching `port` with 200 OK until closed: stops Asterisk's retransmissions to a phone that is gone. */
export async function absorbStraySip(port: number, ms: number): Promise<string[]> {
  const socket = createSocket('udp4');
  const seen: string[] = [];
  socket.on('message', (msg, from) => {
    const text = msg.toString();
    const startLine = text.slice(0, text.indexOf('\r\n'));
    if (/^SIP\/2\.0/.test(startLine)) return;
    seen.push(startLine);
    const keep = text.split('\r\n').filter((l) => /^(via|from|to|call-id|cseq|v|f|t|i):/i.test(l));
    socket.send(`SIP/2.0 200 OK\r\n${keep.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`, from.port, from.address);
  });
  try {
    await new Promise<void>((resolve, reject) => socket.once('error', reject).bind(port, '127.0.0.1', resolve));
  } catch {
    return []; // still held by a phone that is exiting
  }
  await new Promise((r) => setTimeout(r, ms));
  socket.close();
  return seen;
}
