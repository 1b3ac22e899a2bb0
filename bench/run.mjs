// Runs every benchmark in bench/ one after another (never in parallel: they would disturb each other's
// figures). `npm run bench` builds first; pass names to run a subset: `npm run bench -- envelope fernet`.
// tls-audit.mjs starts nginx and runs testssl.sh once (about a minute); it skips itself when either is missing.
// e2ee-relay.mjs starts `enseal serve --dev` on a free loopback port and stops it (about 90 s); with
// ENSEAL_BENCH_PROFILE=1 it profiles that server and prints the top frames.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const benches = readdirSync(here)
  .filter((f) => f.endsWith('.mjs') && f !== 'run.mjs')
  .filter((f) => wanted.length === 0 || wanted.includes(f.replace(/\.mjs$/, '')))
  .sort();

let failed = 0;
for (const file of benches) {
  console.log(`\n=== ${file}`);
  const r = spawnSync(process.execPath, ['--expose-gc', join(here, file)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exitCode = failed === 0 ? 0 : 1;
