// CLI start-up: whole-process wall time of `enseal --version` and `enseal keygen` (and, for scale, an age
// encryption of an empty file) against `node -e 0`, measured in the same run in alternating rounds, so the
// ratio is taken round by round. Goal (docs/benchmarks.md): within 1.5x of `node -e 0`.
// ENSEAL_BENCH_STARTUP_ROUNDS sets the number of rounds (default 15); medians are reported.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const ROUNDS = Number(process.env.ENSEAL_BENCH_STARTUP_ROUNDS ?? 15);
const dir = mkdtempSync(join(tmpdir(), 'enseal-bench-startup-'));

function wall(args) {
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} failed: ${r.stderr}`);
  return secs;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  const empty = join(dir, 'empty');
  writeFileSync(empty, '');
  const recipient = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
  const cases = {
    'node -e 0 (reference)': ['-e', '0'],
    'enseal --version': [CLI, '--version'],
    'enseal keygen': [CLI, 'keygen'],
    'enseal encrypt (empty file)': [CLI, 'encrypt', '-r', recipient, '-o', join(dir, 'e.age'), empty],
  };
  const names = Object.keys(cases);
  const times = Object.fromEntries(names.map((n) => [n, []]));
  for (const n of names) wall(cases[n]); // warm the page cache
  for (let i = 0; i < ROUNDS; i++) for (const n of names) times[n].push(wall(cases[n]));
  const ref = times[names[0]];
  console.log(`CLI start-up, median of ${ROUNDS} alternating rounds (whole-process wall time)`);
  for (const n of names) {
    const ratio = median(times[n].map((t, i) => t / ref[i]));
    const note = n.startsWith('node')
      ? ''
      : `  ${ratio.toFixed(2)}x node -e 0${n === 'enseal --version' || n === 'enseal keygen' ? ' (goal <= 1.5x)' : ''}`;
    console.log(`${n.padEnd(32)} ${(median(times[n]) * 1000).toFixed(0).padStart(6)} ms${note}`);
  }
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`load average at the end: ${load}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
