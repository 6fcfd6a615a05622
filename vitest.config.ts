import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    // Dawn and lavapipe are not fork-safe in one process with many workers; one worker per file.
    pool: 'forks',
    // lavapipe compiles a large pipeline in seconds, more on a loaded machine: generous limits,
    // since timing assertions do not belong in tests
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
});
