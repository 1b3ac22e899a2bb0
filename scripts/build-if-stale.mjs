// `npm start` runs this first: it compiles the TypeScript sources only when dist/ is missing or older than
// them, so a second start with no source change begins serving at once instead of paying a full tsc run.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', 'cli', 'main.js');

/** The newest modification time under `dir` (files only). */
function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

const sources = Math.max(
  newest(join(root, 'src')),
  ...['package.json', 'tsconfig.json', 'tsconfig.build.json'].map((f) => statSync(join(root, f)).mtimeMs),
);
if (existsSync(built) && statSync(built).mtimeMs >= sources) {
  console.error('enseal: dist/ is up to date with src/; starting without a build');
} else {
  console.error(
    existsSync(built)
      ? 'enseal: sources changed since the last build; compiling TypeScript into dist/ (about half a minute)…'
      : 'enseal: first start; compiling TypeScript into dist/ (about half a minute)…',
  );
  const tsc = spawnSync(
    process.execPath,
    [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
  for (const script of ['bundle-cli.mjs', 'bundle-web.mjs']) {
    const bundle = spawnSync(process.execPath, [join(root, 'scripts', script)], {
      cwd: root,
      stdio: 'inherit',
    });
    if (bundle.status !== 0) process.exit(bundle.status ?? 1);
  }
}
