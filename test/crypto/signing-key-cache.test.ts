/**
 * Node's runtime keeps parsed Ed25519 keys (parsing costs more than a short signature). A private key is reused
 * only while the array that held it still holds the same bytes: after the caller wipes or rewrites the array,
 * signatures are made with what the array holds now, never with the key it used to hold.
 */
import { describe, expect, it } from 'vitest';
import { generateSigningKeyPair, sign, signingPublicKey, verify, wipe } from '../../src/crypto/index.js';

describe('the parsed Ed25519 key cache', () => {
  const message = new TextEncoder().encode('the same message');

  it('signs with what the array holds now, after a wipe or a rewrite', () => {
    const first = generateSigningKeyPair('ed25519');
    const second = generateSigningKeyPair('ed25519');
    const held = first.privateKey.slice();
    expect(verify('ed25519', first.publicKey, message, sign('ed25519', held, message))).toBe(true);

    held.set(second.privateKey);
    const rewritten = sign('ed25519', held, message);
    expect(verify('ed25519', second.publicKey, message, rewritten)).toBe(true);
    expect(verify('ed25519', first.publicKey, message, rewritten)).toBe(false);

    wipe(held);
    const zero = new Uint8Array(32);
    expect(sign('ed25519', held, message)).toEqual(sign('ed25519', zero, message));
    expect(
      verify('ed25519', signingPublicKey('ed25519', zero), message, sign('ed25519', held, message)),
    ).toBe(true);
  });

  it('verifies with many public keys in turn (beyond what it keeps) and refuses a wrong one', () => {
    const pairs = Array.from({ length: 600 }, () => generateSigningKeyPair('ed25519'));
    for (const [i, p] of pairs.entries()) {
      const sig = sign('ed25519', p.privateKey, message);
      expect(verify('ed25519', p.publicKey, message, sig)).toBe(true);
      expect(verify('ed25519', pairs[(i + 1) % pairs.length]!.publicKey, message, sig)).toBe(false);
    }
    expect(verify('ed25519', new Uint8Array(32).fill(0xff), message, new Uint8Array(64))).toBe(false);
  });
});
