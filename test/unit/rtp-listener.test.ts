// The integration suite's RTP ears: RTP parsing, G.711 decoding, and
// sound told from silence, checked on hand-made packets over loopback.
import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { alawToLinear, isSound, parseRtp, peakOf, RtpListener, ulawToLinear } from '../integration/rtp-listener.js';

function rtp(payloadType: number, payload: number[], opts: { csrc?: number; extensionWords?: number; padding?: number } = {}): Buffer {
  const csrc = opts.csrc ?? 0;
  const ext = opts.extensionWords;
  const pad = opts.padding ?? 0;
  const header = Buffer.alloc(12 + 4 * csrc + (ext === undefined ? 0 : 4 + 4 * ext));
  header[0] = 0x80 | (pad ? 0x20 : 0) | (ext === undefined ? 0 : 0x10) | csrc;
  header[1] = payloadType;
  if (ext !== undefined) header.writeUInt16BE(ext, 12 + 4 * csrc + 2);
  const padding = pad ? [...Array<number>(pad - 1).fill(0), pad] : [];
  return Buffer.concat([header, Buffer.from(payload), Buffer.from(padding)]);
}

describe('parseRtp', () => {
  it('reads the payload type and payload after the fixed header', () => {
    expect(parseRtp(rtp(0, [1, 2, 3]), 7)).toEqual({ at: 7, payloadType: 0, payload: Buffer.from([1, 2, 3]) });
  });

  it('skips CSRCs and a header extension, and drops padding', () => {
    const packet = parseRtp(rtp(8, [9, 9], { csrc: 2, extensionWords: 1, padding: 4 }), 0);
    expect(packet?.payloadType).toBe(8);
    expect([...packet!.payload]).toEqual([9, 9]);
  });

  it('ignores what is not RTP version 2, or too short', () => {
    expect(parseRtp(Buffer.from('STUN-or-junk-bytes'), 0)).toBeUndefined();
    expect(parseRtp(Buffer.from([0x80, 0]), 0)).toBeUndefined();
  });
});

describe('G.711 decoding', () => {
  it('μ-law: 0xFF and 0x7F are silence, 0x80 and 0x00 the loudest', () => {
    expect(ulawToLinear(0xff)).toBe(0);
    expect(ulawToLinear(0x7f)).toBe(0);
    expect(ulawToLinear(0x80)).toBe(32124);
    expect(ulawToLinear(0x00)).toBe(-32124);
  });

  it('A-law: 0xD5/0x55 are (near) silence, 0xAA and 0x2A the loudest', () => {
    expect(alawToLinear(0xd5)).toBe(8);
    expect(alawToLinear(0x55)).toBe(-8);
    expect(alawToLinear(0xaa)).toBe(32256);
    expect(alawToLinear(0x2a)).toBe(-32256);
  });

  it('sound is a G.711 packet peaking well above silence; DTMF events are not sound', () => {
    const silence = parseRtp(rtp(0, Array<number>(160).fill(0xff)), 0)!;
    const hiss = parseRtp(rtp(0, [0xff, 0xfe, 0x7e, 0xfd]), 0)!;
    const music = parseRtp(rtp(0, [0xff, 0x90, 0xff]), 0)!;
    const dtmf = parseRtp(rtp(101, [0x01, 0x0a, 0x00, 0xa0]), 0)!;
    expect([silence, hiss, music, dtmf].map(isSound)).toEqual([false, false, true, false]);
    expect(peakOf(hiss)).toBeLessThan(256);
  });
});

describe('RtpListener', () => {
  let listener: RtpListener | undefined;
  afterEach(async () => {
    await listener?.close();
    listener = undefined;
  });

  it('listens on an even port and says what arrived in a window of time', async () => {
    listener = await RtpListener.open();
    expect(listener.port % 2).toBe(0);
    const sender = createSocket('udp4');
    const send = (msg: Buffer) => new Promise<void>((resolve) => sender.send(msg, listener!.port, '127.0.0.1', () => resolve()));
    const from = Date.now();
    await send(rtp(0, Array<number>(160).fill(0xff)));
    await send(rtp(0, Array<number>(160).fill(0x85)));
    await send(Buffer.from('not rtp'));
    const deadline = Date.now() + 2000;
    while (listener.packets.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    sender.close();
    expect(listener.heard(from)).toEqual({ packets: 2, sound: 1 });
    expect(listener.heard(Date.now() + 1)).toEqual({ packets: 0, sound: 0 });
  });
});
