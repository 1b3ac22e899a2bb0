// Fernet encrypt and decrypt ops/s: enseal against Python's `cryptography` (the seeds' library), measured in
// the same run on the same 32-byte plaintext. Goal (docs/benchmarks.md): encrypt at least 3x Python.
import { spawnSync } from 'node:child_process';
import { Fernet, generateFernetKey } from '../dist/index.js';
import { fmt, opsPerSecond } from './harness.mjs';

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
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(256): fn()
        n += 256
    return n / (time.perf_counter() - start)
enc = sorted(rate(lambda: f.encrypt(pt)) for _ in range(5))[2]
dec = sorted(rate(lambda: f.decrypt(tok)) for _ in range(5))[2]
print(enc, dec)
`;

function python() {
  for (const cmd of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(cmd, ['-c', PY, key], { encoding: 'utf8' });
    if (r.status === 0) return r.stdout.trim().split(' ').map(Number);
  }
  return undefined;
}

const ensealEnc = opsPerSecond(() => f.encrypt(plaintext));
const ensealDec = opsPerSecond(() => f.decrypt(token));
const py = python();
console.log('Fernet, 32-byte plaintext');
if (py === undefined) {
  console.log('Python cryptography not found (apt-get install python3-cryptography): enseal figures only');
  console.log(`enseal encrypt ${fmt(ensealEnc)} ops/s, decrypt ${fmt(ensealDec)} ops/s`);
} else {
  const [pyEnc, pyDec] = py;
  console.log(`${'Python cryptography encrypt (reference)'.padEnd(48)} ${fmt(pyEnc).padStart(12)} ops/s`);
  console.log(
    `${'enseal encrypt'.padEnd(48)} ${fmt(ensealEnc).padStart(12)} ops/s  ${(ensealEnc / pyEnc).toFixed(1)}x`,
  );
  console.log(`${'Python cryptography decrypt (reference)'.padEnd(48)} ${fmt(pyDec).padStart(12)} ops/s`);
  console.log(
    `${'enseal decrypt'.padEnd(48)} ${fmt(ensealDec).padStart(12)} ops/s  ${(ensealDec / pyDec).toFixed(1)}x`,
  );
}
