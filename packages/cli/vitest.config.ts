import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The tests start real servers and processes: one file at a time on a 2-core machine.
    fileParallelism: false,
    // A bound for a hang, not a speed check: a demo walk takes about 35 s here alone, and twice or three times
    // that on a machine busy with other work.
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
