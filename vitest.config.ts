import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The isolation check compares with a snapshot test/run.sh takes before the whole suite: it runs
    // only from there, last.
    exclude: [
      ...configDefaults.exclude,
      ...(process.env.DBOPS_TEST_ISOLATION_SNAPSHOT ? [] : ['test/isolation/**']),
    ],
    pool: 'forks',
    // Two cores: two test files at a time. Each file uses its own task queue, databases,
    // collections and key prefixes, so files never see each other's work.
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    reporters: ['default'],
    // The run's own Temporal namespace, backup folder and S3 prefix (test/global-setup.ts).
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/setup.ts'],
  },
});
