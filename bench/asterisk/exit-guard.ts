// Whatever the benchmark started is stopped however it ends: normally, on
// an error, on Ctrl-C (SIGINT) or SIGTERM. Each resource registers an
// orderly stop (awaited, in reverse order of registration) and a last-resort
// kill for the process 'exit' event, where nothing can be awaited.

interface Guarded {
  what: string;
  stop(): Promise<void> | void;
  killNow(): void;
}

const guarded: Guarded[] = [];
let stopping: Promise<void> | undefined;

const STOP_DEADLINE_MS = 30_000;

/** Registers a resource; the returned function forgets it (once it was stopped normally). */
export function guard(what: string, stop: () => Promise<void> | void, killNow: () => void): () => void {
  const entry = { what, stop, killNow };
  guarded.push(entry);
  return () => {
    const i = guarded.indexOf(entry);
    if (i >= 0) guarded.splice(i, 1);
  };
}

/** true once the clean-up has begun: start nothing new. */
export function stopRequested(): boolean {
  return stopping !== undefined;
}

/** Stops every registered resource, newest first; each error is reported and the others still stopped. */
export function stopAll(): Promise<void> {
  stopping ??= (async () => {
    for (const entry of [...guarded].reverse()) {
      try {
        await entry.stop();
      } catch (err) {
        process.stderr.write(`bench:asterisk: stopping ${entry.what} failed: ${err instanceof Error ? err.message : String(err)}\n`);
        entry.killNow();
      }
      const i = guarded.indexOf(entry);
      if (i >= 0) guarded.splice(i, 1);
    }
  })();
  return stopping;
}

/** Ctrl-C and SIGTERM stop everything, then exit 130 / 143; a stop that hangs is cut short. */
export function installExitGuard(): void {
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\nbench:asterisk: ${signal}: stopping Asterisk, the phones and the subject ...\n`);
    setTimeout(() => process.exit(1), STOP_DEADLINE_MS).unref();
    void stopAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  // `on`, not `once`: a second Ctrl-C must not kill us in the middle of the clean-up.
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  process.on('exit', () => {
    for (const entry of guarded) {
      try {
        entry.killNow();
      } catch {
        // Already gone.
      }
    }
  });
}
