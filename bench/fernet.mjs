// Fernet encrypt and decrypt ops/s: enseal against Python's `cryptography` (the seeds' library) on the same
// 32-byte plaintext. The two are measured in alternating rounds (enseal, then a Python process, round after
// round) and the ratio is taken per round, so load from other work on a shared machine cancels out of it.
// Goal (docs/benchmarks.md): encrypt at least 3x Python. ENSEAL_BENCH_FERNET_ROUNDS sets the rounds (7).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Fernet, generateFernetKey } from '../dist/index.js';
import { fmt, opsPerSecond } from './harness.mjs';

const ROUNDS = Number(process.env.ENSEAL_BENCH_FERNET_ROUNDS ?? 7);
const key = generateFernetKey();
const f = new Fernet(key);
const plaintext = new Uint8Array(32).fill(7);
const token = f.encrypt(plaintext);

const PY = `
import sys, time
from cryptography.fernet import Fernet
f = Fernet(sys.argv[1].encode())
pt = bytes([7]) * 32
tok = f.encrypt(pt)
def rate(fn, seconds=0.5):
    for _ in range(2000): fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(256): fn()
        n += 256
    return n / (time.perf_counter() - start)
print(rate(lambda: f.encrypt(pt)), rate(lambda: f.decrypt(tok)))
`;

let pythonCmd;
function python() {
  for (const cmd of pythonCmd ? [pythonCmd] : ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(cmd, ['-c', PY, key], { encoding: 'utf8' });
    if (r.status === 0) {
      pythonCmd = cmd;
      return r.stdout.trim().split(' ').map(Number);
    }
  }
  return undefined;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const once = { seconds: 0.5, rounds: 1 };

console.log('Fernet, 32-byte plaintext');
if (python() === undefined) {
  console.log('Python cryptography not found (apt-get install python3-cryptography): enseal figures only');
  console.log(
    `enseal encrypt ${fmt(opsPerSecond(() => f.encrypt(plaintext)))} ops/s, decrypt ${fmt(opsPerSecond(() => f.decrypt(token)))} ops/s`,
  );
} else {
  const r = { enc: [], dec: [], pyEnc: [], pyDec: [], encRatio: [], decRatio: [] };
  for (let i = 0; i < ROUNDS; i++) {
    const enc = opsPerSecond(() => f.encrypt(plaintext), once);
    const dec = opsPerSecond(() => f.decrypt(token), once);
    const [pyEnc, pyDec] = python();
    r.enc.push(enc);
    r.dec.push(dec);
    r.pyEnc.push(pyEnc);
    r.pyDec.push(pyDec);
    r.encRatio.push(enc / pyEnc);
    r.decRatio.push(dec / pyDec);
  }
  console.log(`median of ${ROUNDS} alternating rounds; ratio = median of the per-round ratios`);
  const line = (label, v, ratio) =>
    console.log(
      `${label.padEnd(48)} ${fmt(v).padStart(12)} ops/s${ratio === undefined ? '' : `  ${ratio.toFixed(2)}x`}`,
    );
  line('Python cryptography encrypt (reference)', median(r.pyEnc));
  line('enseal encrypt (goal >= 3x)', median(r.enc), median(r.encRatio));
  line('Python cryptography decrypt (reference)', median(r.pyDec));
  line('enseal decrypt', median(r.dec), median(r.decRatio));
  console.log(
    `load average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
  );
}
