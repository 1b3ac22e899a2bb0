import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EnsealError,
  argon2id,
  hexDecode,
  hexEncode,
  randomBytes,
  utf8Decode,
  utf8Encode,
} from '../../src/crypto/index.js';
import {
  envelopeFromText,
  envelopeToText,
  isKeyCommitting,
  openEnvelope,
  openWithPassphrase,
  parseEnvelope,
  sealEnvelope,
  sealWithPassphrase,
  type EnvelopeSuite,
} from '../../src/formats/index.js';
import { codeOf } from '../helpers/errors.js';

const VECTORS_FILE = fileURLToPath(new URL('../../docs/vectors/envelope.json', import.meta.url));
const KEY = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
const OTHER_KEY = 'ff'.repeat(32);
const SUITES: EnvelopeSuite[] = [
  'aes-256-gcm',
  'chacha20-poly1305',
  'xchacha20-poly1305',
  'aes-256-gcm-hkdf-commit',
];
const NONCE_LEN: Record<string, number> = {
  'aes-256-gcm': 12,
  'chacha20-poly1305': 12,
  'xchacha20-poly1305': 24,
  'aes-256-gcm-hkdf-commit': 32,
};
const CHEAP = { memoryKiB: 1024, iterations: 1, parallelism: 1 };

interface Vector {
  name: string;
  suite: EnvelopeSuite;
  key: string;
  nonce: string;
  aad: string;
  plaintext: string;
  envelope: string;
  text: string;
  keyId?: number;
  keyVersion?: number;
  passphrase?: string;
  kdf?: { memoryKiB: number; iterations: number; parallelism: number; salt: string };
}

interface InvalidVector {
  name: string;
  key: string;
  aad: string;
  envelope: string;
  error: string;
}

/** Builds the published vectors from fixed inputs; the file in docs/ must equal this output. */
async function buildVectors(): Promise<{ valid: Vector[]; invalid: InvalidVector[] }> {
  const inputs: [string, EnvelopeSuite, string, string][] = [
    ['aes-256-gcm, no aad', 'aes-256-gcm', '', 'hello, enseal'],
    ['aes-256-gcm, with aad', 'aes-256-gcm', 'customers/42/ssn', '123-45-6789'],
    ['aes-256-gcm, empty plaintext', 'aes-256-gcm', '', ''],
    ['chacha20-poly1305', 'chacha20-poly1305', 'ctx', 'hello, enseal'],
    ['xchacha20-poly1305', 'xchacha20-poly1305', 'ctx', 'hello, enseal'],
    ['aes-256-gcm-hkdf-commit', 'aes-256-gcm-hkdf-commit', 'ctx', 'hello, enseal'],
  ];
  const valid: Vector[] = inputs.map(([name, suite, aad, plaintext], i) => {
    const nonce = hexEncode(new Uint8Array(NONCE_LEN[suite]!).fill(0xa0 + i));
    const envelope = sealEnvelope({
      suite,
      key: hexDecode(KEY),
      keyId: 0x01020304,
      keyVersion: 7,
      plaintext: utf8Encode(plaintext),
      aad: utf8Encode(aad),
      nonce: hexDecode(nonce),
    });
    return {
      name,
      suite,
      key: KEY,
      keyId: 0x01020304,
      keyVersion: 7,
      nonce,
      aad,
      plaintext,
      envelope: hexEncode(envelope),
      text: envelopeToText(envelope),
    };
  });
  const kdf = { ...CHEAP, salt: 'e0'.repeat(16) };
  const passphrase = 'correct horse battery staple';
  const derived = await argon2id(utf8Encode(passphrase), hexDecode(kdf.salt), CHEAP, 32);
  const pEnvelope = sealEnvelope({
    suite: 'argon2id-aes-256-gcm-hkdf-commit',
    key: derived,
    keyId: 0,
    keyVersion: 0,
    plaintext: utf8Encode('secret notes'),
    aad: utf8Encode('notes'),
    nonce: new Uint8Array(32).fill(0xe1),
    kdf: { ...CHEAP, salt: hexDecode(kdf.salt) },
  });
  valid.push({
    name: 'argon2id passphrase (derived key given)',
    suite: 'argon2id-aes-256-gcm-hkdf-commit',
    key: hexEncode(derived),
    passphrase,
    kdf,
    nonce: 'e1'.repeat(32),
    aad: 'notes',
    plaintext: 'secret notes',
    envelope: hexEncode(pEnvelope),
    text: envelopeToText(pEnvelope),
  });

  const base = hexDecode(valid[1]!.envelope);
  const mutate = (f: (b: Uint8Array) => Uint8Array) => hexEncode(f(base.slice()));
  const invalid: InvalidVector[] = [
    {
      name: 'tag modified',
      key: KEY,
      aad: 'customers/42/ssn',
      envelope: mutate((b) => ((b[b.length - 1]! ^= 1), b)),
      error: 'ERR_DECRYPT_FAILED',
    },
    {
      name: 'ciphertext modified',
      key: KEY,
      aad: 'customers/42/ssn',
      envelope: mutate((b) => ((b[22]! ^= 0x80), b)),
      error: 'ERR_DECRYPT_FAILED',
    },
    {
      name: 'key id modified',
      key: KEY,
      aad: 'customers/42/ssn',
      envelope: mutate((b) => ((b[5]! ^= 1), b)),
      error: 'ERR_DECRYPT_FAILED',
    },
    {
      name: 'key version modified',
      key: KEY,
      aad: 'customers/42/ssn',
      envelope: mutate((b) => ((b[9]! ^= 1), b)),
      error: 'ERR_DECRYPT_FAILED',
    },
    {
      name: 'wrong associated data',
      key: KEY,
      aad: 'customers/43/ssn',
      envelope: valid[1]!.envelope,
      error: 'ERR_DECRYPT_FAILED',
    },
    {
      name: 'wrong key',
      key: OTHER_KEY,
      aad: 'customers/42/ssn',
      envelope: valid[1]!.envelope,
      error: 'ERR_DECRYPT_FAILED',
    },
    {
      name: 'suite changed to chacha20-poly1305',
      key: KEY,
      aad: 'customers/42/ssn',
      envelope: mutate((b) => ((b[1] = 0x02), b)),
      error: 'ERR_DECRYPT_FAILED',
    },
    {
      name: 'truncated below the tag',
      key: KEY,
      aad: '',
      envelope: mutate((b) => b.subarray(0, 30)),
      error: 'ERR_MALFORMED',
    },
    {
      name: 'unknown suite',
      key: KEY,
      aad: '',
      envelope: mutate((b) => ((b[1] = 0x7f), b)),
      error: 'ERR_UNSUPPORTED',
    },
    {
      name: 'unknown version',
      key: KEY,
      aad: '',
      envelope: mutate((b) => ((b[0] = 0x02), b)),
      error: 'ERR_UNSUPPORTED',
    },
    {
      name: 'committing suite, commitment modified',
      key: KEY,
      aad: 'ctx',
      envelope: (() => {
        const b = hexDecode(valid[5]!.envelope);
        b[2 + 8 + 32]! ^= 1;
        return hexEncode(b);
      })(),
      error: 'ERR_DECRYPT_FAILED',
    },
  ];
  return { valid, invalid };
}

describe('envelope vectors (docs/vectors/envelope.json)', () => {
  it('the published file matches what the implementation produces', async () => {
    const built = await buildVectors();
    const json = JSON.stringify({ format: 'enseal envelope v1', ...built }, null, 2) + '\n';
    if (process.env.ENSEAL_WRITE_VECTORS === '1') writeFileSync(VECTORS_FILE, json);
    expect(existsSync(VECTORS_FILE)).toBe(true);
    expect(readFileSync(VECTORS_FILE, 'utf8')).toBe(json);
  });

  it('every valid vector opens to its plaintext, in binary and text form', () => {
    const { valid } = JSON.parse(readFileSync(VECTORS_FILE, 'utf8')) as { valid: Vector[] };
    for (const v of valid) {
      const key = hexDecode(v.key);
      expect(utf8Decode(openEnvelope(hexDecode(v.envelope), key, utf8Encode(v.aad))), v.name).toBe(
        v.plaintext,
      );
      expect(hexEncode(envelopeFromText(v.text))).toBe(v.envelope);
    }
    console.log(`envelope vectors: ${valid.length} valid cases opened`);
  });

  it('the passphrase vector opens from the passphrase alone', async () => {
    const { valid } = JSON.parse(readFileSync(VECTORS_FILE, 'utf8')) as { valid: Vector[] };
    const v = valid.find((x) => x.passphrase !== undefined)!;
    expect(utf8Decode(await openWithPassphrase(v.passphrase!, v.text, { aad: v.aad }))).toBe(v.plaintext);
  });

  it('every invalid vector fails with its documented code', () => {
    const { invalid } = JSON.parse(readFileSync(VECTORS_FILE, 'utf8')) as { invalid: InvalidVector[] };
    for (const v of invalid) {
      expect(
        codeOf(() => openEnvelope(hexDecode(v.envelope), hexDecode(v.key), utf8Encode(v.aad))),
        v.name,
      ).toBe(v.error);
    }
    console.log(`envelope vectors: ${invalid.length} invalid cases rejected`);
  });
});

describe('envelope', () => {
  it('round-trips every suite with and without associated data', () => {
    for (const suite of SUITES) {
      const key = randomBytes(32);
      for (const aad of [new Uint8Array(0), utf8Encode('row 1')]) {
        const sealed = sealEnvelope({ suite, key, keyId: 1, keyVersion: 2, plaintext: utf8Encode('x'), aad });
        expect(utf8Decode(openEnvelope(sealed, key, aad))).toBe('x');
        expect(parseEnvelope(sealed)).toMatchObject({ suite, keyId: 1, keyVersion: 2 });
      }
    }
  });

  it('uses a fresh nonce for every message', () => {
    const key = randomBytes(32);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const env = parseEnvelope(
        sealEnvelope({ suite: 'aes-256-gcm', key, keyId: 1, keyVersion: 1, plaintext: utf8Encode('same') }),
      );
      seen.add(hexEncode(env.nonce));
    }
    expect(seen.size).toBe(200);
  });

  it('flipping any single bit of an envelope makes it fail with a typed error', () => {
    for (const suite of SUITES) {
      const key = randomBytes(32);
      const sealed = sealEnvelope({
        suite,
        key,
        keyId: 9,
        keyVersion: 1,
        plaintext: utf8Encode('secret'),
        aad: utf8Encode('a'),
      });
      for (let i = 0; i < sealed.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          const copy = sealed.slice();
          copy[i]! ^= 1 << bit;
          const code = codeOf(() => openEnvelope(copy, key, utf8Encode('a')));
          expect(['ERR_DECRYPT_FAILED', 'ERR_UNSUPPORTED', 'ERR_MALFORMED']).toContain(code);
        }
      }
    }
  });

  it('reports committing suites', () => {
    expect(isKeyCommitting('aes-256-gcm-hkdf-commit')).toBe(true);
    expect(isKeyCommitting('argon2id-aes-256-gcm-hkdf-commit')).toBe(true);
    expect(isKeyCommitting('aes-256-gcm')).toBe(false);
  });

  it('the text form is strict', () => {
    const sealed = envelopeToText(
      sealEnvelope({
        suite: 'aes-256-gcm',
        key: randomBytes(32),
        keyId: 1,
        keyVersion: 1,
        plaintext: utf8Encode('x'),
      }),
    );
    expect(sealed.startsWith('ens1.')).toBe(true);
    expect(codeOf(() => envelopeFromText(sealed.replace('ens1.', 'ens2.')))).toBe('ERR_MALFORMED');
    expect(codeOf(() => envelopeFromText(sealed + '='))).toBe('ERR_MALFORMED');
    expect(codeOf(() => envelopeFromText(sealed + '!'))).toBe('ERR_MALFORMED');
  });

  it('random and mutated input never crashes or opens', () => {
    const key = randomBytes(32);
    const good = sealEnvelope({
      suite: 'aes-256-gcm',
      key,
      keyId: 1,
      keyVersion: 1,
      plaintext: utf8Encode('p'),
    });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const code = codeOf(() => openEnvelope(bytes, key));
        expect(['ERR_DECRYPT_FAILED', 'ERR_UNSUPPORTED', 'ERR_MALFORMED']).toContain(code);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(
        fc.nat(good.length - 1),
        fc.uint8Array({ maxLength: 8 }),
        fc.nat(good.length),
        (at, extra, cut) => {
          const mutated = new Uint8Array([
            ...good.subarray(0, at),
            ...extra,
            ...good.subarray(at + 1),
          ]).subarray(0, cut);
          if (Buffer.from(mutated).equals(Buffer.from(good))) return; // the draw reproduced the original
          const code = codeOf(() => openEnvelope(mutated, key));
          expect(['ERR_DECRYPT_FAILED', 'ERR_UNSUPPORTED', 'ERR_MALFORMED']).toContain(code);
        },
      ),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 120 }), (text) => {
        try {
          openEnvelope(envelopeFromText(text), key);
          expect.unreachable();
        } catch (err) {
          expect(err).toBeInstanceOf(EnsealError);
        }
      }),
    );
  });
});

describe('passphrase envelopes', () => {
  it('open with the passphrase and fail with any other', async () => {
    const sealed = await sealWithPassphrase('pw-1', 'data', { params: CHEAP, aad: 'ctx' });
    expect(utf8Decode(await openWithPassphrase('pw-1', sealed, { aad: 'ctx' }))).toBe('data');
    await expect(openWithPassphrase('pw-2', sealed, { aad: 'ctx' })).rejects.toMatchObject({
      code: 'ERR_DECRYPT_FAILED',
    });
    await expect(openWithPassphrase('pw-1', sealed, { aad: 'other' })).rejects.toMatchObject({
      code: 'ERR_DECRYPT_FAILED',
    });
  });

  it('defaults to OWASP Argon2id parameters', async () => {
    const sealed = await sealWithPassphrase('pw', 'x');
    expect(parseEnvelope(envelopeFromText(sealed)).kdf).toMatchObject({
      memoryKiB: 19456,
      iterations: 2,
      parallelism: 1,
    });
  });

  it('refuses hostile KDF parameters before doing any work', async () => {
    const sealed = envelopeFromText(await sealWithPassphrase('pw', 'x', { params: CHEAP }));
    const hostile = sealed.slice();
    hostile.set([0xff, 0xff, 0xff, 0xff], 2); // memory 4 TiB
    await expect(openWithPassphrase('pw', hostile)).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED' });
    const zeroLanes = sealed.slice();
    zeroLanes[10] = 0;
    await expect(openWithPassphrase('pw', zeroLanes)).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED' });
  });

  it('rejects an empty passphrase', async () => {
    await expect(sealWithPassphrase('', 'x', { params: CHEAP })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
  });
});
