import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The integration suite needs a real Asterisk: `npm run test:integration`.
    exclude: ['test/integration/**', 'node_modules/**'],
    // test/e2e: the emulator's seeded REST response/event order (ARI_EMU_ORDER_SEED).
    setupFiles: ['test/emulator/order-mode.setup.ts'],
    testTimeout: 15_000,
    hookTimeout: 15_000,
  },
});
