// Envelope and keyset encrypt/decrypt against raw node:crypto AES-256-GCM, measured in the same run with
// alternating rounds. Goal (docs/benchmarks.md): 32-byte values at >= 80% of raw createCipheriv ops/s.
import { createCipheriv, createDecipheriv, randomBytes, randomFillSync } from 'node:crypto';
import { Keyset, openEnvelope, sealEnvelope } from '../dist/index.js';
import { compare, comparison } from './harness.mjs';

const key = randomBytes(32);

function rawSeal(plaintext) {
  const nonce = randomFillSync(Buffer.alloc(12));
  const c = createCipheriv('aes-256-gcm', key, nonce);
  const body = c.update(plaintext);
  c.final();
  return { nonce, body, tag: c.getAuthTag() };
}

function rawOpen({ nonce, body, tag }) {
  const d = createDecipheriv('aes-256-gcm', key, nonce);
  d.setAuthTag(tag);
  const out = d.update(body);
  d.final();
  return out;
}

const sealArgs = (plaintext) => ({ suite: 'aes-256-gcm', key, keyId: 1, keyVersion: 1, plaintext });
const keyset = Keyset.generate({ purpose: 'encrypt' });

for (const [size, unit, opts] of [
  [32, 'ops/s', {}],
  [1 << 20, 'MiB/s', { seconds: 0.5, rounds: 5 }],
]) {
  const value = randomBytes(size);
  console.log(`\n${size === 32 ? '32-byte values' : '1 MiB values'} (fresh random nonce per operation)`);
  comparison(
    'envelope encrypt (sealEnvelope)',
    'raw createCipheriv encrypt (reference)',
    compare(
      () => sealEnvelope(sealArgs(value)),
      () => rawSeal(value),
      opts,
    ),
    unit,
  );
  comparison(
    'keyset encrypt (binary envelope)',
    'raw createCipheriv encrypt (reference)',
    compare(
      () => keyset.encryptBytes(value),
      () => rawSeal(value),
      opts,
    ),
    unit,
  );
  const raw = rawSeal(value);
  const env = sealEnvelope(sealArgs(value));
  const ks = keyset.encryptBytes(value);
  comparison(
    'envelope decrypt (openEnvelope)',
    'raw createDecipheriv decrypt (reference)',
    compare(
      () => openEnvelope(env, key),
      () => rawOpen(raw),
      opts,
    ),
    unit,
  );
  comparison(
    'keyset decrypt (binary envelope)',
    'raw createDecipheriv decrypt (reference)',
    compare(
      () => keyset.decrypt(ks),
      () => rawOpen(raw),
      opts,
    ),
    unit,
  );
  if (size === 32) {
    const text = keyset.encrypt(value);
    comparison(
      'keyset encrypt, text form (ens1.…)',
      'raw createCipheriv encrypt (reference)',
      compare(
        () => keyset.encrypt(value),
        () => rawSeal(value),
      ),
      unit,
    );
    comparison(
      'keyset decrypt, text form',
      'raw createDecipheriv decrypt (reference)',
      compare(
        () => keyset.decrypt(text),
        () => rawOpen(raw),
      ),
      unit,
    );
  }
}
