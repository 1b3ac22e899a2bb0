// age file encryption on one file, in one run: the enseal CLI against the Go `age` CLI (X25519 recipient,
// whole-process wall time, output to a fresh file each run) and against the `age-encryption` npm package,
// plus peak resident memory (max RSS from /usr/bin/time). Goals (docs/benchmarks.md): enseal/age time at most
// 1.0 on a 256 MiB file in the page cache, at least 10x faster than `age-encryption`, peak memory under 64 MiB
// whatever the file size. ENSEAL_BENCH_AGE_MB sets the file size (default 256), ENSEAL_BENCH_AGE_ROUNDS the
// number of alternating runs (default 5; medians are reported). The package is timed on a 64 MiB slice and
// scaled, because at its speed a full GiB would take half a minute per direction.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, writeSync, closeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Decrypter, Encrypter, generateIdentity, identityToRecipient } from 'age-encryption';

const MB = Number(process.env.ENSEAL_BENCH_AGE_MB ?? 256);
const ROUNDS = Number(process.env.ENSEAL_BENCH_AGE_ROUNDS ?? 5);
const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'enseal-bench-age-'));

function have(cmd) {
  return spawnSync(cmd, ['--version']).status === 0;
}

/** Runs a command under /usr/bin/time; returns wall seconds and peak RSS in MiB. */
function timed(cmd, args) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const [secs, kib] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return { secs, rss: kib / 1024 };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Medians of time and of memory, and the median of the per-round enseal/age time ratio. */
function summary(ensealRuns, ageRuns) {
  return {
    enseal: median(ensealRuns.map((r) => r.secs)),
    age: median(ageRuns.map((r) => r.secs)),
    ratio: median(ensealRuns.map((r, i) => r.secs / ageRuns[i].secs)),
    ensealRss: Math.max(...ensealRuns.map((r) => r.rss)),
    ageRss: Math.max(...ageRuns.map((r) => r.rss)),
  };
}

try {
  if (!have('age') || !have('age-keygen') || spawnSync('/usr/bin/time', ['true']).status !== 0) {
    console.log('age bench needs the `age` CLI and /usr/bin/time (apt-get install age time)');
    process.exit(0);
  }
  const input = join(dir, 'input.bin');
  const block = randomBytes(1 << 20);
  const fd = openSync(input, 'w');
  for (let i = 0; i < MB; i++) writeSync(fd, block);
  closeSync(fd);
  const key = join(dir, 'key.txt');
  spawnSync('age-keygen', ['-o', key]);
  const recipient = spawnSync('age-keygen', ['-y', key], { encoding: 'utf8' }).stdout.trim();

  const rounds = ROUNDS;
  spawnSync('cat', [input], { stdio: ['ignore', 'ignore', 'ignore'] }); // into the page cache
  const results = { age: { enc: [], dec: [] }, enseal: { enc: [], dec: [] } };
  for (let i = 0; i < rounds; i++) {
    results.age.enc.push(timed('age', ['-r', recipient, '-o', join(dir, 'a.age'), input]));
    rmSync(join(dir, 'a.age'));
    rmSync(join(dir, 'e.age'), { force: true });
    results.enseal.enc.push(
      timed(process.execPath, [CLI, 'encrypt', '-r', recipient, '-o', join(dir, 'e.age'), input]),
    );
  }
  spawnSync('age', ['-r', recipient, '-o', join(dir, 'a.age'), input]);
  for (let i = 0; i < rounds; i++) {
    results.age.dec.push(timed('age', ['-d', '-i', key, '-o', join(dir, 'a.out'), join(dir, 'a.age')]));
    rmSync(join(dir, 'a.out'));
    rmSync(join(dir, 'e.out'), { force: true });
    results.enseal.dec.push(
      timed(process.execPath, [CLI, 'decrypt', '-i', key, '-o', join(dir, 'e.out'), join(dir, 'e.age')]),
    );
  }
  const check = spawnSync('cmp', [input, join(dir, 'e.out')]);
  if (check.status !== 0) throw new Error('round trip mismatch');

  // age-encryption: 64 MiB in-process, scaled to the file size.
  const slice = readFileSync(input).subarray(0, 64 << 20);
  const identity = await generateIdentity();
  const e = new Encrypter();
  e.addRecipient(await identityToRecipient(identity));
  let t = performance.now();
  const sealed = await e.encrypt(slice);
  const pkgEnc = ((performance.now() - t) / 1000) * (MB / 64);
  const d = new Decrypter();
  d.addIdentity(identity);
  t = performance.now();
  await d.decrypt(sealed);
  const pkgDec = ((performance.now() - t) / 1000) * (MB / 64);

  const enc = summary(results.enseal.enc, results.age.enc);
  const dec = summary(results.enseal.dec, results.age.dec);
  const rate = (secs) => `${Math.round(MB / secs)} MiB/s`;
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`age format, ${MB} MiB file, median of ${rounds} alternating runs (whole-process wall time)`);
  for (const [name, r] of [
    ['encrypt', enc],
    ['decrypt', dec],
  ]) {
    console.log(
      `  ${name}  age CLI ${r.age.toFixed(2)} s (${rate(r.age)})   enseal ${r.enseal.toFixed(2)} s (${rate(r.enseal)})   enseal/age time ${r.ratio.toFixed(2)} (goal <= 1.00)`,
    );
  }
  console.log(
    `  age-encryption package (64 MiB scaled): encrypt ${pkgEnc.toFixed(1)} s, decrypt ${pkgDec.toFixed(1)} s -> enseal is ${(pkgEnc / enc.enseal).toFixed(1)}x / ${(pkgDec / dec.enseal).toFixed(1)}x faster`,
  );
  console.log(
    `  peak RSS (max over runs)  enseal encrypt ${enc.ensealRss.toFixed(0)} MiB, decrypt ${dec.ensealRss.toFixed(0)} MiB (goal < 64); age CLI ${enc.ageRss.toFixed(0)} / ${dec.ageRss.toFixed(0)} MiB`,
  );
  console.log(`  load average at the end: ${load}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
