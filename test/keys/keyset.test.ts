import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EnsealError } from '../../src/crypto/index.js';
import { utf8Encode } from '../../src/crypto/index.js';
import { envelopeFromText, parseEnvelope } from '../../src/formats/index.js';
import {
  KeyEncryptionKey,
  Keyset,
  openKeyset,
  openKeysetWithPassphrase,
  sealKeyset,
  sealKeysetWithPassphrase,
} from '../../src/keys/index.js';
import { codeOf } from '../helpers/errors.js';

const CHEAP = { memoryKiB: 1024, iterations: 1, parallelism: 1 };

describe('encryption keysets', () => {
  it('decrypt values from every enabled version after rotation', () => {
    const ks = Keyset.generate({ purpose: 'encrypt' });
    const v1 = ks.encrypt('one');
    expect(ks.rotate()).toBe(2);
    const v2 = ks.encrypt('two');
    expect(parseEnvelope(envelopeFromText(v1)).keyVersion).toBe(1);
    expect(parseEnvelope(envelopeFromText(v2)).keyVersion).toBe(2);
    expect(ks.decryptString(v1)).toBe('one');
    expect(ks.decryptString(v2)).toBe('two');
    expect(ks.versions().map((v) => [v.version, v.primary])).toEqual([
      [1, false],
      [2, true],
    ]);
  });

  it('binds associated data', () => {
    const ks = Keyset.generate({ purpose: 'encrypt' });
    const c = ks.encrypt('ssn', { aad: 'row 1' });
    expect(codeOf(() => ks.decrypt(c, { aad: 'row 2' }))).toBe('ERR_DECRYPT_FAILED');
    expect(codeOf(() => ks.decrypt(c))).toBe('ERR_DECRYPT_FAILED');
  });

  it('disabled versions serve nothing until enabled; destroyed ones are gone', () => {
    const ks = Keyset.generate({ purpose: 'encrypt' });
    const old = ks.encrypt('x');
    ks.rotate();
    ks.disable(1);
    expect(codeOf(() => ks.decrypt(old))).toBe('ERR_KEY_USAGE');
    ks.enable(1);
    expect(ks.decryptString(old)).toBe('x');
    ks.destroy(1);
    expect(codeOf(() => ks.decrypt(old))).toBe('ERR_KEY_NOT_FOUND');
    expect(codeOf(() => ks.enable(1))).toBe('ERR_KEY_NOT_FOUND');
  });

  it('refuses to disable or destroy the primary', () => {
    const ks = Keyset.generate({ purpose: 'encrypt' });
    expect(codeOf(() => ks.disable(1))).toBe('ERR_KEY_USAGE');
    expect(codeOf(() => ks.destroy(1))).toBe('ERR_KEY_USAGE');
  });

  it('rejects values from another keyset with a clear error', () => {
    const a = Keyset.generate({ purpose: 'encrypt' });
    const b = Keyset.generate({ purpose: 'encrypt' });
    expect(codeOf(() => b.decrypt(a.encrypt('x')))).toBe('ERR_KEY_NOT_FOUND');
  });

  it('supports every encryption algorithm, mixed across versions', () => {
    const ks = Keyset.generate({ purpose: 'encrypt', algorithm: 'chacha20-poly1305' });
    const values = [ks.encrypt('a')];
    for (const alg of ['xchacha20-poly1305', 'aes-256-gcm-hkdf-commit', 'aes-256-gcm'] as const) {
      ks.rotate(alg);
      values.push(ks.encrypt(alg));
    }
    expect(values.map((v) => ks.decryptString(v))).toEqual([
      'a',
      'xchacha20-poly1305',
      'aes-256-gcm-hkdf-commit',
      'aes-256-gcm',
    ]);
  });

  it('rotates automatically at the usage limit', () => {
    const ks = Keyset.generate({ purpose: 'encrypt', usageLimit: 3 });
    const values = Array.from({ length: 7 }, (_, i) => ks.encrypt(String(i)));
    expect(ks.primaryVersion).toBe(3);
    expect(ks.versions().map((v) => v.uses)).toEqual([3, 3, 1]);
    expect(values.map((v) => ks.decryptString(v))).toEqual(['0', '1', '2', '3', '4', '5', '6']);
  });

  it('refuses to exceed the usage limit when automatic rotation is off', () => {
    const ks = Keyset.generate({ purpose: 'encrypt', usageLimit: 2, autoRotate: false });
    ks.encrypt('1');
    ks.encrypt('2');
    expect(codeOf(() => ks.encrypt('3'))).toBe('ERR_KEY_USAGE_LIMIT');
  });

  it('sets the default limit to half the random-nonce bound for 96-bit nonces', () => {
    expect(Keyset.generate({ purpose: 'encrypt' }).usageLimit()).toBe(2 ** 31);
    expect(Keyset.generate({ purpose: 'encrypt', algorithm: 'xchacha20-poly1305' }).usageLimit()).toBe(
      Number.MAX_SAFE_INTEGER,
    );
  });
});

describe('purpose is enforced', () => {
  it('each keyset does only its own job', () => {
    const enc = Keyset.generate({ purpose: 'encrypt' });
    const sig = Keyset.generate({ purpose: 'sign' });
    const mac = Keyset.generate({ purpose: 'mac' });
    const der = Keyset.generate({ purpose: 'derive' });
    expect(codeOf(() => enc.sign('m'))).toBe('ERR_KEY_USAGE');
    expect(codeOf(() => sig.encrypt('m'))).toBe('ERR_KEY_USAGE');
    expect(codeOf(() => mac.derive('m'))).toBe('ERR_KEY_USAGE');
    expect(codeOf(() => der.mac('m'))).toBe('ERR_KEY_USAGE');
    expect(codeOf(() => enc.rotate('ed25519'))).toBe('ERR_KEY_USAGE');
  });
});

describe('signing, MAC and derivation keysets', () => {
  it('sign and verify across rotation, for both algorithms', () => {
    for (const algorithm of ['ed25519', 'ecdsa-p256'] as const) {
      const ks = Keyset.generate({ purpose: 'sign', algorithm });
      const s1 = ks.sign('msg');
      ks.rotate();
      const s2 = ks.sign('msg');
      expect(ks.verify('msg', s1)).toBe(true);
      expect(ks.verify('msg', s2)).toBe(true);
      expect(ks.verify('other', s2)).toBe(false);
      const bad = s2.slice();
      bad[bad.length - 1]! ^= 1;
      expect(ks.verify('msg', bad)).toBe(false);
      expect(ks.publicKeys()).toHaveLength(2);
    }
  });

  it('MAC tags verify in constant time and only for the same data', () => {
    const ks = Keyset.generate({ purpose: 'mac' });
    const tag = ks.mac('data');
    expect(ks.verifyMac('data', tag)).toBe(true);
    expect(ks.verifyMac('dat4', tag)).toBe(false);
    expect(ks.verifyMac('data', tag.subarray(0, 20))).toBe(false);
    expect(Keyset.generate({ purpose: 'mac' }).verifyMac('data', tag)).toBe(false);
  });

  it('derives independent, stable keys per context', () => {
    const ks = Keyset.generate({ purpose: 'derive' });
    expect(ks.derive('tenant-a')).toEqual(ks.derive('tenant-a'));
    expect(ks.derive('tenant-a')).not.toEqual(ks.derive('tenant-b'));
    expect(ks.derive('tenant-a', 64)).toHaveLength(64);
  });
});

describe('keysets at rest', () => {
  it('seal under a KEK, bind id and purpose, and reject the wrong KEK clearly', () => {
    const kek = KeyEncryptionKey.generate();
    const ks = Keyset.generate({ purpose: 'encrypt' });
    const c = ks.encrypt('x');
    const sealed = sealKeyset(ks, kek);
    expect(JSON.stringify(sealed)).not.toContain(
      ks.exportPlaintext({ allowPlaintextKeyMaterial: true }).versions[0]!.key,
    );
    expect(openKeyset(JSON.parse(JSON.stringify(sealed)), kek).decryptString(c)).toBe('x');
    expect(codeOf(() => openKeyset(sealed, KeyEncryptionKey.generate()))).toBe('ERR_KEY_NOT_FOUND');
    expect(codeOf(() => openKeyset({ ...sealed, id: (sealed.id ^ 1) >>> 0 }, kek))).toBe(
      'ERR_DECRYPT_FAILED',
    );
    expect(codeOf(() => openKeyset({ ...sealed, purpose: 'sign' }, kek))).toBe('ERR_DECRYPT_FAILED');
  });

  it('persist usage counters and the primary', () => {
    const kek = KeyEncryptionKey.generate();
    const ks = Keyset.generate({ purpose: 'encrypt' });
    ks.encrypt('a');
    ks.rotate();
    ks.encrypt('b');
    const back = openKeyset(sealKeyset(ks, kek), kek);
    expect(back.versions()).toEqual(ks.versions());
  });

  it('seal under a passphrase', async () => {
    const ks = Keyset.generate({ purpose: 'mac' });
    const sealed = await sealKeysetWithPassphrase(ks, 'pass phrase', CHEAP);
    expect((await openKeysetWithPassphrase(sealed, 'pass phrase')).id).toBe(ks.id);
    await expect(openKeysetWithPassphrase(sealed, 'wrong')).rejects.toMatchObject({
      code: 'ERR_DECRYPT_FAILED',
    });
  });

  it('plaintext export and import need the explicit flag', () => {
    const ks = Keyset.generate({ purpose: 'encrypt' });
    expect(codeOf(() => ks.exportPlaintext({ allowPlaintextKeyMaterial: false }))).toBe(
      'ERR_EXPORT_FORBIDDEN',
    );
    expect(codeOf(() => Keyset.fromPlaintext({}, { allowPlaintextKeyMaterial: false }))).toBe(
      'ERR_EXPORT_FORBIDDEN',
    );
    const json = ks.exportPlaintext({ allowPlaintextKeyMaterial: true });
    const back = Keyset.fromPlaintext(json, { allowPlaintextKeyMaterial: true });
    expect(back.decryptString(ks.encrypt('y'))).toBe('y');
  });

  it('never prints key material through JSON.stringify', () => {
    const ks = Keyset.generate({ purpose: 'encrypt' });
    const material = ks.exportPlaintext({ allowPlaintextKeyMaterial: true }).versions[0]!.key!;
    expect(JSON.stringify(ks)).not.toContain(material);
    expect(JSON.stringify(KeyEncryptionKey.generate())).toMatch(/^\{"fingerprint":\d+\}$/);
  });

  it('KEK text must be 32 bytes of base64 and errors never echo it', () => {
    const kek = KeyEncryptionKey.generate();
    expect(KeyEncryptionKey.fromText(` ${kek.toText()}\n`).fingerprint).toBe(kek.fingerprint);
    try {
      KeyEncryptionKey.fromText('c2VjcmV0LXZhbHVl');
      expect.unreachable();
    } catch (err) {
      expect((err as EnsealError).code).toBe('ERR_INVALID_ARGUMENT');
      expect((err as Error).message).not.toContain('c2VjcmV0LXZhbHVl');
    }
  });

  it('mutated keyset JSON and sealed keysets yield typed errors', () => {
    const kek = KeyEncryptionKey.generate();
    const ks = Keyset.generate({ purpose: 'encrypt' });
    const json = ks.exportPlaintext({ allowPlaintextKeyMaterial: true }) as unknown as Record<
      string,
      unknown
    >;
    const sealed = sealKeyset(ks, kek) as unknown as Record<string, unknown>;
    const anyValue = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.constant(null),
      fc.boolean(),
      fc.array(fc.nat()),
      fc.double(),
    );
    fc.assert(
      fc.property(fc.constantFrom(...Object.keys(json)), anyValue, (field, value) => {
        const code = codeOf(() =>
          Keyset.fromPlaintext({ ...json, [field]: value }, { allowPlaintextKeyMaterial: true }),
        );
        expect(['ERR_MALFORMED', 'no error']).toContain(code);
      }),
    );
    fc.assert(
      fc.property(fc.constantFrom(...Object.keys(sealed)), anyValue, (field, value) => {
        if (value === sealed[field]) return; // not a mutation (e.g. "kek" drawn as "key")
        const code = codeOf(() => openKeyset({ ...sealed, [field]: value }, kek));
        expect([
          'ERR_MALFORMED',
          'ERR_DECRYPT_FAILED',
          'ERR_KEY_NOT_FOUND',
          'ERR_KEK_MISSING',
          'ERR_UNSUPPORTED',
        ]).toContain(code);
      }),
    );
    fc.assert(
      fc.property(
        fc.nat((sealed.data as string).length - 1),
        fc.string({ minLength: 1, maxLength: 1 }),
        (at, ch) => {
          const data = sealed.data as string;
          const mutated = data.slice(0, at) + ch + data.slice(at + 1);
          if (mutated === data) return;
          const code = codeOf(() => openKeyset({ ...sealed, data: mutated }, kek));
          expect(['ERR_MALFORMED', 'ERR_DECRYPT_FAILED', 'ERR_KEY_NOT_FOUND', 'ERR_UNSUPPORTED']).toContain(
            code,
          );
        },
      ),
    );
  });

  it('encrypts a value that a different process can decrypt from the sealed form', () => {
    const kek = KeyEncryptionKey.generate();
    const ks = Keyset.generate({ purpose: 'encrypt' });
    const stored = JSON.stringify(sealKeyset(ks, kek));
    const c = ks.encrypt(utf8Encode('bytes'));
    expect(openKeyset(JSON.parse(stored), KeyEncryptionKey.fromText(kek.toText())).decryptString(c)).toBe(
      'bytes',
    );
  });
});
