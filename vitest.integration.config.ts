import { defineConfig } from 'vitest/config';

// Run through `npm run test:integration`, which finds an Asterisk first.
export default defineConfig({
  test: {
    include: ['test/integration/**/*.test.ts'],
    // One set of phone ports and one Asterisk: scenarios run one at a time.
    fileParallelism: false,
    testTimeout: 90_000,
    hookTimeout: 60_000,
  },
});
