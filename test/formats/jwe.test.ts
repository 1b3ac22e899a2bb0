import { CompactEncrypt, compactDecrypt, importJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { utf8Decode, utf8Encode } from '../../src/crypto/index.js';
import { decryptJwe, encryptJwe, generateJweKeyPair } from '../../src/formats/index.js';
import { asyncCodeOf } from '../helpers/errors.js';

const CASES = [
  ['RSA-OAEP-256', 'X25519'],
  ['ECDH-ES+A256KW', 'X25519'],
  ['ECDH-ES+A256KW', 'P-256'],
] as const;

describe('JWE', () => {
  for (const [alg, crv] of CASES) {
    it(`${alg}${alg === 'RSA-OAEP-256' ? '' : ` (${crv})`} + A256GCM round-trips and interoperates with jose both ways`, async () => {
      const { publicJwk, privateJwk } = await generateJweKeyPair(alg, crv);
      const jwe = await encryptJwe('payload', publicJwk, { kid: 'k1' });
      const header = JSON.parse(Buffer.from(jwe.split('.')[0]!, 'base64url').toString());
      expect(header).toMatchObject({ alg, enc: 'A256GCM', kid: 'k1' });
      expect(utf8Decode(await decryptJwe(jwe, privateJwk))).toBe('payload');
      // Plain jose on the other side, both directions.
      const theirs = await compactDecrypt(jwe, await importJWK(privateJwk, alg));
      expect(utf8Decode(theirs.plaintext)).toBe('payload');
      const fromJose = await new CompactEncrypt(utf8Encode('from jose'))
        .setProtectedHeader({ alg, enc: 'A256GCM' })
        .encrypt(await importJWK(publicJwk, alg));
      expect(utf8Decode(await decryptJwe(fromJose, privateJwk))).toBe('from jose');
    });
  }

  it('tampering fails with ERR_DECRYPT_FAILED', async () => {
    const { publicJwk, privateJwk } = await generateJweKeyPair('ECDH-ES+A256KW');
    const parts = (await encryptJwe('x', publicJwk)).split('.');
    for (const i of [1, 2, 3, 4]) {
      // Flip a decoded byte: editing base64url text can land on ignored trailing bits and change nothing.
      const p = [...parts];
      const bytes = Buffer.from(p[i]!, 'base64url');
      bytes[0]! ^= 0x01;
      p[i] = bytes.toString('base64url');
      expect(await asyncCodeOf(decryptJwe(p.join('.'), privateJwk))).toBe('ERR_DECRYPT_FAILED');
    }
    expect(await asyncCodeOf(decryptJwe('not.a.jwe', privateJwk))).toBe('ERR_MALFORMED');
  });

  it('refuses algorithms outside the allow-list', async () => {
    const { publicJwk, privateJwk } = await generateJweKeyPair('ECDH-ES+A256KW');
    const dirToken = await new CompactEncrypt(utf8Encode('x'))
      .setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM' })
      .encrypt(await importJWK(publicJwk, 'ECDH-ES'));
    expect(await asyncCodeOf(decryptJwe(dirToken, privateJwk))).toBe('ERR_DECRYPT_FAILED');
    const weakEnc = await new CompactEncrypt(utf8Encode('x'))
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A128CBC-HS256' })
      .encrypt(await importJWK(publicJwk, 'ECDH-ES+A256KW'));
    expect(await asyncCodeOf(decryptJwe(weakEnc, privateJwk))).toBe('ERR_DECRYPT_FAILED');
    expect(await asyncCodeOf(encryptJwe('x', publicJwk, { alg: 'RSA1_5' as never }))).toBe('ERR_UNSUPPORTED');
  });
});
