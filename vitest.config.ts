import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { LongestFirstSequencer } from './test/sequencer.js';

export default defineConfig({
  resolve: {
    // Tests run the TypeScript sources; `#runtime` is the Node seam there (the browser seam has its own test).
    alias: { '#runtime': fileURLToPath(new URL('./src/crypto/runtime/node.ts', import.meta.url)) },
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Vitest's default is one worker fewer than the CPUs: on a two-core machine (as in CI) one file at a time,
    // leaving a core idle while a file waits on its child processes (scanners, the CLI, serve, nginx,
    // PostgreSQL, a browser) and sockets. Two workers there; larger machines keep the default. The test files
    // already run side by side on those (free ports, their own PostgreSQL clusters and temp directories).
    maxWorkers: Math.max(2, availableParallelism() - 1),
    // Longest files first, so that neither worker is left finishing a long file alone at the end.
    sequence: { sequencer: LongestFirstSequencer },
  },
});
