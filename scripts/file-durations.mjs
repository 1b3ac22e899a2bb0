// Writes test/file-durations.json (seconds per test file, longest first) for the longest-first test
// sequencer (test/sequencer.ts), from the per-file durations vitest keeps after a run in its results cache
// (node_modules/.vite/vitest/*/results.json). A file's duration there includes its beforeAll/afterAll hooks,
// where some files do all their slow work; the JSON reporter's per-file times leave hooks out. Usage:
//   CI=true ENSEAL_SLOW_VECTORS=1 npx vitest run && node scripts/file-durations.mjs
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cacheDir = join(root, 'node_modules', '.vite', 'vitest');
const caches = existsSync(cacheDir)
  ? readdirSync(cacheDir)
      .map((d) => join(cacheDir, d, 'results.json'))
      .filter((f) => existsSync(f))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)
  : [];
if (caches.length === 0) {
  console.error(`no vitest results cache under ${relative(root, cacheDir)}: run the suite first`);
  process.exit(1);
}
const { results } = JSON.parse(readFileSync(caches[0], 'utf8'));
const entries = results
  // Keys are "<project>:<file relative to the root>"; keep files that still exist.
  .map(([key, { duration }]) => [key.slice(key.indexOf(':') + 1), Math.round(duration / 100) / 10])
  .filter(([file]) => existsSync(join(root, file)))
  .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
const out = join(root, 'test', 'file-durations.json');
writeFileSync(out, `${JSON.stringify(Object.fromEntries(entries), null, 2)}\n`);
console.log(`${entries.length} files written to ${relative(root, out)}`);
