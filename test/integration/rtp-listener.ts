// What a SIPp phone would hear: SIPp sends and plays no audio, so a phone
// of the integration suite advertises in its SDP (-key rtp_port) a UDP port
// on which the test itself listens, and the test counts the RTP packets
// Asterisk sends there, telling sound (music on hold, a voice) from
// silence by decoding the G.711 payload.
import { createSocket, type Socket } from 'node:dgram';

export interface RtpPacket {
  /** When the packet arrived (Date.now()). */
  at: number;
  payloadType: number;
  payload: Buffer;
}

/** The RTP header of `msg`, or undefined if it is not RTP version 2. */
export function parseRtp(msg: Buffer, at: number): RtpPacket | undefined {
  if (msg.length < 12 || msg[0]! >> 6 !== 2) return undefined;
  const csrcCount = msg[0]! & 0x0f;
  const hasExtension = (msg[0]! & 0x10) !== 0;
  const hasPadding = (msg[0]! & 0x20) !== 0;
  let offset = 12 + 4 * csrcCount;
  if (hasExtension) {
    if (msg.length < offset + 4) return undefined;
    offset += 4 + 4 * msg.readUInt16BE(offset + 2);
  }
  let end = msg.length;
  if (hasPadding) end -= msg[msg.length - 1]!;
  if (end < offset) return undefined;
  return { at, payloadType: msg[1]! & 0x7f, payload: msg.subarray(offset, end) };
}

/** G.711 μ-law (PCMU) byte → linear 16-bit sample. */
export function ulawToLinear(byte: number): number {
  const u = ~byte & 0xff;
  const sign = u & 0x80;
  const exponent = (u >> 4) & 0x07;
  const mantissa = u & 0x0f;
  const magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
  return sign ? 0 - magnitude : magnitude;
}

/** G.711 A-law (PCMA) byte → linear 16-bit sample. */
export function alawToLinear(byte: number): number {
  const a = byte ^ 0x55;
  const sign = a & 0x80;
  const exponent = (a >> 4) & 0x07;
  const mantissa = a & 0x0f;
  const magnitude = exponent === 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (exponent - 1);
  return sign ? magnitude : 0 - magnitude;
}

/**
 * Below this peak amplitude (of 32,767) a packet is silence: PCMU's
 * silence is 0xFF/0x7F (0), and a codec's idle noise stays within a few
 * steps of it; music and speech peak far above.
 */
export const SILENCE_PEAK = 256;

/** The loudest sample of a G.711 packet (payload type 0 = PCMU, 8 = PCMA); 0 for anything else (DTMF, comfort noise). */
export function peakOf(packet: RtpPacket): number {
  const decode = packet.payloadType === 0 ? ulawToLinear : packet.payloadType === 8 ? alawToLinear : undefined;
  if (!decode) return 0;
  let peak = 0;
  for (const byte of packet.payload) peak = Math.max(peak, Math.abs(decode(byte)));
  return peak;
}

export const isSound = (packet: RtpPacket): boolean => peakOf(packet) >= SILENCE_PEAK;

/** What arrived in a window of time: every packet, and those carrying sound. */
export interface Heard {
  packets: number;
  sound: number;
}

export class RtpListener {
  readonly packets: RtpPacket[] = [];

  private constructor(
    private readonly socket: Socket,
    readonly port: number,
  ) {
    socket.on('message', (msg) => {
      const packet = parseRtp(msg, Date.now());
      if (packet) this.packets.push(packet);
    });
  }

  /** Listens on an even UDP port of 127.0.0.1 (RTP's convention; RTCP would go to the next one). */
  static async open(): Promise<RtpListener> {
    for (let tries = 0; tries < 50; tries++) {
      const socket = createSocket('udp4');
      await new Promise<void>((resolve, reject) => socket.once('error', reject).bind(0, '127.0.0.1', resolve));
      const { port } = socket.address();
      if (port % 2 === 0) return new RtpListener(socket, port);
      await new Promise<void>((resolve) => socket.close(resolve));
    }
    throw new Error('no even UDP port found for an RTP listener');
  }

  /** What arrived between `from` and `to` (Date.now() values). */
  heard(from: number, to: number = Date.now()): Heard {
    const inWindow = this.packets.filter((p) => p.at >= from && p.at < to);
    return { packets: inWindow.length, sound: inWindow.filter(isSound).length };
  }

  /** Listens for `ms` from now and says what arrived meanwhile. */
  async listen(ms: number): Promise<Heard> {
    const from = Date.now();
    await new Promise((r) => setTimeout(r, ms));
    return this.heard(from);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.close(resolve));
  }
}
