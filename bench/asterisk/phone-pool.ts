// The SIPp phones of the benchmark that still run, so that a failure or a
// Ctrl-C stops them all; once closed, no new phone starts (a transfer in
// progress must not start phones behind the clean-up's back).
import { SippPhone, type PhoneOptions, type SipTarget } from '../../test/integration/phones.js';

export class PhonePool {
  private readonly live = new Set<SippPhone>();
  private closed = false;

  start(options: PhoneOptions, target: SipTarget): SippPhone {
    if (this.closed) throw new Error('stopping: no new phones');
    const phone = SippPhone.start(options, target);
    this.live.add(phone);
    void phone.exited.then(() => this.live.delete(phone));
    return phone;
  }

  /** Stops every running phone (SIGTERM) and refuses new ones. */
  close(): void {
    this.closed = true;
    for (const phone of this.live) phone.stop();
  }
}
