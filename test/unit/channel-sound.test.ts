// Music and ringback requests on one channel reach Asterisk in the order they were asked for.
import { describe, expect, it } from 'vitest';
import { ChannelSound, type SoundRest } from '../../src/legs/channel-sound.js';

/** A REST client whose requests stay open until the test answers them, in any order. */
function heldRest() {
  const open: { what: string; answer(ok: boolean): void }[] = [];
  const sent: string[] = [];
  const request = (what: string) =>
    new Promise<void>((resolve, reject) => {
      sent.push(what);
      open.push({ what, answer: (ok) => (ok ? resolve() : reject(new Error(`${what} failed`))) });
    });
  const rest: SoundRest = {
    startMoh: (id, cls) => request(`startMoh ${id} ${cls}`),
    stopMoh: (id) => request(`stopMoh ${id}`),
    startRinging: (id) => request(`startRinging ${id}`),
    stopRinging: (id) => request(`stopRinging ${id}`),
  };
  const answer = async (what: string, ok = true) => {
    const i = open.findIndex((o) => o.what === what);
    open.splice(i, 1)[0]!.answer(ok);
    await new Promise((r) => setTimeout(r, 0));
  };
  return { rest, sent, answer };
}

describe('ChannelSound', () => {
  it('sends a channel its next request only once Asterisk has answered the previous one, failed or not', async () => {
    const { rest, sent, answer } = heldRest();
    const sound = new ChannelSound(rest);
    const start = sound.startMoh('alice', 'default');
    const stop = sound.stopMoh('alice');
    const ring = sound.startRinging('alice');
    await new Promise((r) => setTimeout(r, 0));
    expect(sent).toEqual(['startMoh alice default']);
    await answer('startMoh alice default', false);
    await expect(start).rejects.toThrow('startMoh alice default failed');
    expect(sent).toEqual(['startMoh alice default', 'stopMoh alice']);
    await answer('stopMoh alice');
    await stop;
    await answer('startRinging alice');
    await ring;
    expect(sent).toEqual(['startMoh alice default', 'stopMoh alice', 'startRinging alice']);
    expect(sound.busyChannels).toBe(0);
  });

  it('never holds one channel back for another', async () => {
    const { rest, sent } = heldRest();
    const sound = new ChannelSound(rest);
    void sound.startMoh('alice', 'default');
    void sound.startRinging('carol');
    await new Promise((r) => setTimeout(r, 0));
    expect(sent).toEqual(['startMoh alice default', 'startRinging carol']);
  });
});
