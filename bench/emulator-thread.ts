// The main thread's handle on the emulator worker: start it, send it requests.
import { Worker } from 'node:worker_threads';
import type { Envelope, ReplyEnvelope, WorkerReplies, WorkerRequest } from './protocol.js';

type Reply<R extends WorkerRequest> = WorkerReplies[R['op']];

export class EmulatorThread {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: ReplyEnvelope) => {
      const w = this.waiting.get(reply.id);
      if (!w) return;
      this.waiting.delete(reply.id);
      if (reply.ok) w.resolve(reply.result);
      else w.reject(new Error(`emulator worker: ${reply.error}`));
    });
    worker.on('error', (err) => {
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    });
  }

  /** A worker running bench/emulator-worker.ts through tsx, with an emulator listening on loopback. */
  static async start(noiseEvents = true): Promise<{ thread: EmulatorThread; url: string }> {
    // Workers do not inherit `--import tsx`: register tsx's loader in the worker first.
    const tsx = import.meta.resolve('tsx/esm/api');
    const entry = new URL('./emulator-worker.ts', import.meta.url).href;
    const worker = new Worker(
      `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(entry)}); });`,
      { eval: true },
    );
    const thread = new EmulatorThread(worker);
    // The first request may arrive before the module has loaded: messages queue until then.
    const { url } = await thread.request({ op: 'start', noiseEvents });
    return { thread, url };
  }

  /** The worker's event-loop utilisation, readable from this thread. */
  get performance(): Worker['performance'] {
    return this.worker.performance;
  }

  request<R extends WorkerRequest>(request: R): Promise<Reply<R>> {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, request } satisfies Envelope);
    });
  }

  async close(): Promise<void> {
    await this.request({ op: 'close' });
    await this.worker.terminate();
  }
}
