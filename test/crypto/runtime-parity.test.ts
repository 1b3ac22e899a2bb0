/**
 * The two runtimes behind the seam must be interchangeable: on random inputs, OpenSSL (node) and noble
 * (browser) give byte-identical results for every deterministic operation, and each verifies the other's
 * randomized signatures.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runtime as b } from '../../src/crypto/runtime/browser.js';
import { runtime as n } from '../../src/crypto/runtime/node.js';
import type { HashName, RuntimeAead } from '../../src/crypto/runtime/types.js';
import { loadJson } from '../helpers/vectors.js';

const bytes = (len: number) => fc.uint8Array({ minLength: len, maxLength: len });
const data = fc.uint8Array({ maxLength: 300 });
const hashes: HashName[] = ['sha1', 'sha224', 'sha256', 'sha384', 'sha512'];

describe('node and browser runtimes agree', () => {
  it('AEAD seal and open', () => {
    const algs: [RuntimeAead, number][] = [
      ['aes-128-gcm', 16],
      ['aes-256-gcm', 32],
      ['chacha20-poly1305', 32],
    ];
    for (const [alg, keyLen] of algs) {
      fc.assert(
        fc.property(bytes(keyLen), bytes(12), data, data, (key, nonce, pt, aad) => {
          const sealed = n.aeadSeal(alg, key, nonce, pt, aad);
          expect(b.aeadSeal(alg, key, nonce, pt, aad)).toEqual(sealed);
          expect(b.aeadOpen(alg, key, nonce, sealed, aad)).toEqual(pt);
          const bad = sealed.slice();
          bad[0]! ^= 1;
          expect(n.aeadOpen(alg, key, nonce, bad, aad)).toBeNull();
          expect(b.aeadOpen(alg, key, nonce, bad, aad)).toBeNull();
        }),
        { numRuns: 100 },
      );
    }
  });

  it('HChaCha20, AES-CBC, AES-CTR, AES-CMAC', () => {
    fc.assert(
      fc.property(bytes(32), bytes(16), data, (key, iv, msg) => {
        expect(b.hchacha20(key, iv)).toEqual(n.hchacha20(key, iv));
        const cbc = n.aesCbcEncrypt(key.subarray(0, 16), iv, msg, 0, 0);
        expect(b.aesCbcEncrypt(key.subarray(0, 16), iv, msg, 0, 0)).toEqual(cbc);
        for (const rt of [n, b]) {
          const roomy = rt.aesCbcEncrypt(key.subarray(0, 16), iv, msg, 25, 32);
          expect([roomy.length, roomy.subarray(25, roomy.length - 32)]).toEqual([cbc.length + 57, cbc]);
        }
        expect(b.aesCbcDecrypt(key.subarray(0, 16), iv, cbc)).toEqual(msg);
        expect(b.aesCtr(key, iv, msg)).toEqual(n.aesCtr(key, iv, msg));
        expect(b.aesCmac(key, msg)).toEqual(n.aesCmac(key, msg));
      }),
      { numRuns: 100 },
    );
  });

  it('digests, HMAC, HKDF, PBKDF2, scrypt', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...hashes),
        data,
        data,
        data,
        fc.integer({ min: 1, max: 100 }),
        (hash, ikm, salt, info, len) => {
          expect(b.digest(hash, ikm)).toEqual(n.digest(hash, ikm));
          expect(b.hmac(hash, salt, ikm)).toEqual(n.hmac(hash, salt, ikm));
          expect(b.hkdf(hash, ikm, salt, info, len)).toEqual(n.hkdf(hash, ikm, salt, info, len));
          expect(b.pbkdf2(hash, ikm, salt, 3, len)).toEqual(n.pbkdf2(hash, ikm, salt, 3, len));
        },
      ),
      { numRuns: 100 },
    );
    fc.assert(
      fc.property(data, data, (pw, salt) => {
        const cost = { N: 16, r: 8, p: 1 };
        expect(b.scrypt(pw, salt, cost, 32)).toEqual(n.scrypt(pw, salt, cost, 32));
      }),
      { numRuns: 20 },
    );
  });

  it('X25519, Ed25519 and ECDSA P-256', () => {
    fc.assert(
      fc.property(bytes(32), bytes(32), data, (a, c, msg) => {
        const pubC = n.x25519PublicKey(c);
        expect(b.x25519PublicKey(c)).toEqual(pubC);
        expect(b.x25519(a, pubC)).toEqual(n.x25519(a, pubC));
        const edPub = n.ed25519PublicKey(a);
        expect(b.ed25519PublicKey(a)).toEqual(edPub);
        const sig = n.ed25519Sign(a, msg);
        expect(b.ed25519Sign(a, msg)).toEqual(sig); // Ed25519 is deterministic
        expect(b.ed25519Verify(edPub, msg, sig)).toBe(true);
      }),
      { numRuns: 50 },
    );
    // A fixed valid P-256 scalar; ECDSA signatures are randomized, so each side verifies the other's.
    const d = new Uint8Array(32).fill(7);
    const pub = n.p256PublicKey(d);
    expect(b.p256PublicKey(d)).toEqual(pub);
    fc.assert(
      fc.property(data, (msg) => {
        expect(b.p256Verify(pub, msg, n.p256Sign(d, msg))).toBe(true);
        expect(n.p256Verify(pub, msg, b.p256Sign(d, msg))).toBe(true);
      }),
      { numRuns: 30 },
    );
  });

  it('constant-time comparison', () => {
    fc.assert(
      fc.property(data, data, (x, y) => {
        expect(b.timingSafeEqual(x, y)).toBe(n.timingSafeEqual(x, y));
        expect(n.timingSafeEqual(x, x.slice())).toBe(true);
      }),
    );
  });
});

describe('vector files that are not applicable to the crypto layer', () => {
  it('exist, and are listed with the reason they do not apply', () => {
    const files = {
      'ecdh_secp256r1_test.json': 'no ECDH P-256 API; HPKE P-256 is covered by the RFC 9180 vectors',
      'ecdh_secp256r1_webcrypto_test.json':
        'no ECDH P-256 API; HPKE P-256 is covered by the RFC 9180 vectors',
      'aes_siv_cmac_test.json': 'no AES-SIV API',
      'aead_aes_siv_cmac_test.json': 'no AES-SIV API',
    };
    for (const [file, reason] of Object.entries(files)) {
      const { numberOfTests } = loadJson<{ numberOfTests: number }>('wycheproof', file);
      expect(numberOfTests).toBeGreaterThan(0);
      console.log(`wycheproof ${file}: ${numberOfTests} cases, not applicable (${reason})`);
    }
  });
});
