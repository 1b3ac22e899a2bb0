import { describe, expect, it } from 'vitest';
import { aeadOpen, aeadSeal, randomBytes, utf8Encode, utf8Decode, runtimeName, sign, verify, generateSigningKeyPair } from '../../src/crypto/index.js';

describe('smoke', () => {
  it('round-trips', () => {
    expect(runtimeName()).toBe('node');
    for (const alg of ['aes-256-gcm', 'chacha20-poly1305', 'xchacha20-poly1305'] as const) {
      const key = randomBytes(32);
      const nonce = randomBytes(alg === 'xchacha20-poly1305' ? 24 : 12);
      const ct = aeadSeal(alg, key, nonce, utf8Encode('hi'), utf8Encode('ad'));
      expect(utf8Decode(aeadOpen(alg, key, nonce, ct, utf8Encode('ad')))).toBe('hi');
    }
    for (const a of ['ed25519', 'ecdsa-p256'] as const) {
      const kp = generateSigningKeyPair(a);
      const sig = sign(a, kp.privateKey, utf8Encode('m'));
      expect(verify(a, kp.publicKey, utf8Encode('m'), sig)).toBe(true);
    }
  });
});
