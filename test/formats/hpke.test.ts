import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { utf8Decode } from '../../src/crypto/index.js';
import {
  generateHpkeKeyPair,
  hpkeFromText,
  hpkeOpen,
  hpkeSeal,
  hpkeToText,
  parseHpkeHeader,
} from '../../src/formats/index.js';
import { asyncCodeOf } from '../helpers/errors.js';

describe('HPKE payloads', () => {
  it('Base mode round-trips for both suites, binding info and aad', async () => {
    const bob = generateHpkeKeyPair();
    for (const suite of ['x25519-hkdf-sha256-aes-256-gcm', 'x25519-hkdf-sha256-chacha20-poly1305'] as const) {
      const sealed = await hpkeSeal(bob.publicKey, 'hi bob', { info: 'app', aad: 'msg-1', suite });
      expect(parseHpkeHeader(sealed).mode).toBe('base');
      expect(utf8Decode(await hpkeOpen(bob.privateKey, sealed, { info: 'app', aad: 'msg-1' }))).toBe(
        'hi bob',
      );
      expect(await asyncCodeOf(hpkeOpen(bob.privateKey, sealed, { info: 'other', aad: 'msg-1' }))).toBe(
        'ERR_DECRYPT_FAILED',
      );
      expect(await asyncCodeOf(hpkeOpen(bob.privateKey, sealed, { info: 'app', aad: 'msg-2' }))).toBe(
        'ERR_DECRYPT_FAILED',
      );
      expect(
        await asyncCodeOf(hpkeOpen(generateHpkeKeyPair().privateKey, sealed, { info: 'app', aad: 'msg-1' })),
      ).toBe('ERR_DECRYPT_FAILED');
    }
  });

  it('Auth mode proves the sender', async () => {
    const alice = generateHpkeKeyPair();
    const bob = generateHpkeKeyPair();
    const mallory = generateHpkeKeyPair();
    const sealed = await hpkeSeal(bob.publicKey, 'signed-ish', { sender: alice });
    expect(parseHpkeHeader(sealed).mode).toBe('auth');
    expect(utf8Decode(await hpkeOpen(bob.privateKey, sealed, { senderPublicKey: alice.publicKey }))).toBe(
      'signed-ish',
    );
    expect(await asyncCodeOf(hpkeOpen(bob.privateKey, sealed, { senderPublicKey: mallory.publicKey }))).toBe(
      'ERR_DECRYPT_FAILED',
    );
    expect(await asyncCodeOf(hpkeOpen(bob.privateKey, sealed))).toBe('ERR_KEK_MISSING');
    // A Base-mode message never satisfies a caller who expects a particular sender.
    const base = await hpkeSeal(bob.publicKey, 'anon');
    expect(await asyncCodeOf(hpkeOpen(bob.privateKey, base, { senderPublicKey: alice.publicKey }))).toBe(
      'ERR_DECRYPT_FAILED',
    );
  });

  it('the text form round-trips', async () => {
    const bob = generateHpkeKeyPair();
    const text = hpkeToText(await hpkeSeal(bob.publicKey, 'x'));
    expect(text.startsWith('hpke1.')).toBe(true);
    expect(utf8Decode(await hpkeOpen(bob.privateKey, hpkeFromText(text)))).toBe('x');
  });

  it('any header or body modification fails', async () => {
    const bob = generateHpkeKeyPair();
    const sealed = await hpkeSeal(bob.publicKey, 'payload');
    for (let i = 0; i < sealed.length; i++) {
      const copy = sealed.slice();
      copy[i]! ^= 0x01;
      expect(['ERR_DECRYPT_FAILED', 'ERR_UNSUPPORTED', 'ERR_INVALID_ARGUMENT']).toContain(
        await asyncCodeOf(hpkeOpen(bob.privateKey, copy)),
      );
    }
  });

  it('random input yields a typed error', async () => {
    const bob = generateHpkeKeyPair();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 120 }), async (bytes) => {
        expect(['ERR_DECRYPT_FAILED', 'ERR_UNSUPPORTED', 'ERR_MALFORMED', 'ERR_INVALID_ARGUMENT']).toContain(
          await asyncCodeOf(hpkeOpen(bob.privateKey, bytes)),
        );
      }),
      { numRuns: 300 },
    );
  });
});
