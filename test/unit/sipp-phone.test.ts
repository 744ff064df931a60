// The integration suite's SIPp driver, checked with two real SIPp phones
// calling each other on loopback (no Asterisk needed).
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { exitOf, SippPhone } from '../integration/phones.js';

const hasSipp = !spawnSync('sipp', ['-v']).error;

describe.skipIf(!hasSipp)('SippPhone (needs sipp: apt-get install sip-tester)', () => {
  it('plays a scenario and reads back what the phone sent and received', async () => {
    const callee = SippPhone.start({ scenario: 'uas_answer.xml', phone: '1003', port: 15063 }, { host: '127.0.0.1', port: 15099 });
    await new Promise((r) => setTimeout(r, 300));
    const caller = SippPhone.start({ scenario: 'uac_call_wait_bye.xml', phone: '1001', port: 15061, call: '1003' }, { host: '127.0.0.1', port: 15063 });
    try {
      const deadline = Date.now() + 5000;
      while (!caller.messages().some((m) => m.method === 'ACK') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(caller.messages().map((m) => `${m.direction} ${m.method ?? m.status}`)).toEqual([
        'sent INVITE',
        'received 100',
        'received 180',
        'received 200',
        'sent ACK',
      ]);
      const invite = callee.messages().find((m) => m.method === 'INVITE');
      expect(invite?.headers.get('from')).toContain('sip:1001@');
      expect(invite?.callId).toBe(caller.messages()[0]!.callId);
    } finally {
      caller.stop();
      callee.stop();
      await Promise.all([exitOf(caller, 5000), exitOf(callee, 5000)]);
    }
  });
});
