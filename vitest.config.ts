import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // Training tests are CPU-bound; two cores: keep files from fighting over them.
    fileParallelism: false,
    pool: 'forks',
  },
});
