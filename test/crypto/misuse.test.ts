import { describe, expect, it } from 'vitest';
import {
  EnsealError,
  aeadOpen,
  aeadOpenWithNonce,
  aeadParams,
  aeadSeal,
  aeadSealWithRandomNonce,
  argon2id,
  constantTimeEqual,
  hkdf,
  randomBytes,
  scrypt,
  utf8Encode,
} from '../../src/crypto/index.js';
import { codeOf as code } from '../helpers/errors.js';

describe('the crypto layer refuses misuse', () => {
  it('checks key and nonce lengths and names the parameter', () => {
    expect(() => aeadSeal('aes-256-gcm', randomBytes(16), randomBytes(12), new Uint8Array())).toThrow(
      /key must be 32 bytes/,
    );
    expect(() => aeadSeal('aes-256-gcm', randomBytes(32), randomBytes(16), new Uint8Array())).toThrow(
      /nonce must be 12 bytes/,
    );
    expect(code(() => aeadSeal('aes-256-gcm', randomBytes(32), randomBytes(12), 'text' as never))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });

  it('fails truncated or empty ciphertexts with ERR_DECRYPT_FAILED', () => {
    const key = randomBytes(32);
    expect(code(() => aeadOpen('aes-256-gcm', key, randomBytes(12), new Uint8Array(5)))).toBe(
      'ERR_DECRYPT_FAILED',
    );
    expect(code(() => aeadOpenWithNonce('xchacha20-poly1305', key, new Uint8Array(10)))).toBe(
      'ERR_DECRYPT_FAILED',
    );
    const sealed = aeadSealWithRandomNonce('chacha20-poly1305', key, utf8Encode('x'));
    expect(aeadOpenWithNonce('chacha20-poly1305', key, sealed)).toEqual(utf8Encode('x'));
  });

  it('refuses unknown algorithms', () => {
    expect(code(() => aeadParams('aes-128-cbc'))).toBe('ERR_UNSUPPORTED');
    expect(code(() => aeadParams('__proto__'))).toBe('ERR_UNSUPPORTED');
  });

  it('bounds KDF costs', async () => {
    expect(code(() => scrypt(utf8Encode('p'), utf8Encode('s'), { N: 1000, r: 8, p: 1 }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
    expect(code(() => scrypt(utf8Encode('p'), utf8Encode('s'), { N: 2 ** 21, r: 8, p: 1 }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
    expect(code(() => hkdf('sha256', randomBytes(32), undefined, undefined, 255 * 32 + 1))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
    await expect(
      argon2id(utf8Encode('p'), randomBytes(16), { memoryKiB: 2 ** 23, iterations: 1, parallelism: 1 }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  it('compares in constant time with exact semantics', () => {
    expect(constantTimeEqual(utf8Encode('abc'), utf8Encode('abc'))).toBe(true);
    expect(constantTimeEqual(utf8Encode('abc'), utf8Encode('abd'))).toBe(false);
    expect(constantTimeEqual(utf8Encode('abc'), utf8Encode('ab'))).toBe(false);
    expect(constantTimeEqual(new Uint8Array(), new Uint8Array())).toBe(true);
  });

  it('errors are EnsealErrors with stable codes and no cause in JSON', () => {
    try {
      aeadOpen('aes-256-gcm', randomBytes(32), randomBytes(12), randomBytes(40));
    } catch (err) {
      expect(err).toBeInstanceOf(EnsealError);
      expect(JSON.stringify(err)).toBe(
        JSON.stringify({ code: 'ERR_DECRYPT_FAILED', message: (err as Error).message }),
      );
    }
  });
});
