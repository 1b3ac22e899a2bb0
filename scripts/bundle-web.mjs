// Bundles the browser builds after tsc: dist/web/enseal-e2ee.js (the e2ee library with IndexedDB state and
// non-extractable WebCrypto keys, src/web/index.ts) and, when its source exists, dist/web/app.js (the web
// client, src/web/app/main.ts). Both are minified ES modules with source maps, built from the sources with the
// `browser` condition so the runtime seam picks WebCrypto. Prints each output's size and fails when an output
// would import a Node built-in.
import { build } from 'esbuild';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'web');
const entries = [
  { name: 'enseal-e2ee', source: join(root, 'src', 'web', 'index.ts') },
  { name: 'app', source: join(root, 'src', 'web', 'app', 'main.ts') },
].filter((e) => existsSync(e.source));

const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
/**
 * Fails the build on any import of a Node built-in, naming the importer. One exception: the HPKE and ML-KEM
 * libraries fall back to `await import("crypto")` only when `globalThis.crypto` is missing, which never happens
 * in a browser; that dynamic import is replaced by a module that says so, and nothing of Node is bundled.
 */
const noNodeBuiltins = {
  name: 'no-node-builtins',
  setup(b) {
    b.onResolve({ filter: /^(node:)?crypto$/ }, (args) => {
      if (args.kind === 'dynamic-import' && args.importer.includes('node_modules'))
        return { path: 'no-node-crypto', namespace: 'enseal-stub' };
      return undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'enseal-stub' }, () => ({
      contents: "throw new Error('WebCrypto (globalThis.crypto) is required');",
      loader: 'js',
    }));
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.path.startsWith('node:') || builtins.has(args.path.split('/')[0])) {
        return {
          errors: [
            {
              text: `${relative(root, args.importer)} imports the Node built-in "${args.path}" into a browser build`,
            },
          ],
        };
      }
      return undefined;
    });
  },
};

mkdirSync(outdir, { recursive: true });
for (const entry of entries) {
  const outfile = join(outdir, `${entry.name}.js`);
  const result = await build({
    entryPoints: [entry.source],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    conditions: ['enseal-source', 'browser'],
    minify: true,
    sourcemap: true,
    legalComments: 'linked',
    metafile: true,
    plugins: [noNodeBuiltins],
    logLevel: 'warning',
  });
  const code = readFileSync(outfile);
  if (/\bfrom\s*["']node:|\bimport\(["']node:|\brequire\(["']node:/.test(code.toString('utf8')))
    throw new Error(`${relative(root, outfile)} refers to a Node built-in`);
  const inputs = Object.keys(result.metafile.inputs).length;
  console.error(
    `enseal: ${relative(root, outfile)} ${code.length} bytes (${gzipSync(code, { level: 9 }).length} gzip), ${inputs} modules`,
  );
}
