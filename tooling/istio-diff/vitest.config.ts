import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Renders the chart once per run and hands it to every test file.
    globalSetup: ['test/global-setup.ts'],
    // Each file runs its own oracle process: one file at a time on a 2-core machine.
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 120_000,
  },
});
