// Vitest setup file: the end-to-end suites (test/e2e) run the emulator in its seeded
// order mode, where each REST request's response and the events it causes arrive in
// either order, and a REST hangup finishes after its 204, as with a real Asterisk.
// ARI_EMU_ORDER_SEED unset or `random`: one seed per test file, printed;
// ARI_EMU_ORDER_SEED=<n> replays it; `off`: the events-first order of the old emulator.
import { basename } from 'node:path';
import { beforeEach, expect } from 'vitest';
import { AriEmulator } from './emulator.js';

const testPath = expect.getState().testPath ?? '';

if (/[\\/]test[\\/]e2e[\\/]/.test(testPath)) {
  const env = process.env.ARI_EMU_ORDER_SEED?.trim() || 'random';
  if (env === 'off') {
    AriEmulator.defaults = { ...AriEmulator.defaults, orderSeed: null };
  } else {
    const seed = env === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(env);
    if (!Number.isSafeInteger(seed)) throw new Error(`ARI_EMU_ORDER_SEED must be an integer, "random" or "off", got "${env}"`);
    // Tests assert on the emulator's state after `emu.settled()` (the e2e harness's
    // transferFinished / quiescent), so a hangup still finishing is never mistaken for a leak.
    const asyncHangup = true;
    AriEmulator.defaults = { ...AriEmulator.defaults, orderSeed: seed, asyncHangup };
    console.log(`[ari-emulator] ${basename(testPath)}: REST response/event order seed ${seed} (ARI_EMU_ORDER_SEED=${seed} replays it)`);
    // Each emulator restarts the seeded sequence, so one test replays alone (vitest -t) too.
    beforeEach(({ task, onTestFailed }) => {
      onTestFailed(() => {
        const name = task.name.replace(/[^\w\s,:;'=<>/-]/g, '.'); // -t takes a regex; '.' matches anything
        console.log(`[ari-emulator] failed with order seed ${seed}; replay: ARI_EMU_ORDER_SEED=${seed} npx vitest run ${basename(testPath)} -t "${name}"`);
      });
    });
  }
}
