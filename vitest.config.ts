import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // Two cores: two test files at a time. Each file uses its own task queue, databases,
    // collections and key prefixes, so files never see each other's work.
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    reporters: ['default'],
    setupFiles: ['test/setup.ts'],
  },
});
