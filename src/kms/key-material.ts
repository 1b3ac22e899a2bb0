/**
 * Key material of one version of a named key, and the primitive operations on it. All cryptography here
 * comes from the crypto layer; this module only decides which primitive a key type uses.
 */
import {
  aeadOpenWithNonce,
  aeadSealWithRandomNonce,
  concatBytes,
  constantTimeEqual,
  generateSigningKeyPair,
  hkdf,
  hmac,
  randomBytes,
  rsaPublicKeyFromPrivate,
  rsaSign,
  rsaSigningGenerateKeyPair,
  rsaVerify,
  sign,
  signingPublicKey,
  utf8Encode,
  verify,
  type RsaSignatureScheme,
} from '../crypto/index.js';
import { KEY_TYPES, type KeyType } from './key-types.js';

/** Default HMAC key size in bytes (Vault's default); `hmac` keys accept 32–512. */
export const DEFAULT_HMAC_KEY_BYTES = 32;

/** Creates fresh material for a version: a symmetric key, an EC scalar or seed, or a PKCS#8 RSA key. */
export async function generateMaterial(
  type: KeyType,
  hmacKeyBytes = DEFAULT_HMAC_KEY_BYTES,
): Promise<Uint8Array> {
  switch (type) {
    case 'aes256-gcm96':
    case 'chacha20-poly1305':
    case 'xchacha20-poly1305':
      return randomBytes(32);
    case 'hmac':
      return randomBytes(hmacKeyBytes);
    case 'ed25519':
    case 'ecdsa-p256':
      return generateSigningKeyPair(type).privateKey;
    case 'rsa-2048':
    case 'rsa-3072':
    case 'rsa-4096':
      return (await rsaSigningGenerateKeyPair(Number(type.slice(4)) as 2048 | 3072 | 4096)).privateKey;
  }
}

/** Checks that imported or restored material has the shape its type needs. */
export function materialLooksValid(type: KeyType, material: Uint8Array): boolean {
  switch (type) {
    case 'aes256-gcm96':
    case 'chacha20-poly1305':
    case 'xchacha20-poly1305':
    case 'ed25519':
    case 'ecdsa-p256':
      return material.length === 32;
    case 'hmac':
      return material.length >= 32 && material.length <= 512;
    default:
      return material.length > 256 && material.length < 4096;
  }
}

/** The public key of a signing key version (raw for Ed25519/P-256, SPKI DER for RSA). */
export async function publicKeyOf(type: KeyType, material: Uint8Array): Promise<Uint8Array> {
  if (type === 'ed25519' || type === 'ecdsa-p256') return signingPublicKey(type, material);
  return rsaPublicKeyFromPrivate(material);
}

const DERIVE_INFO = utf8Encode('enseal/derived-key/v1');

/**
 * The key for one derivation context: HKDF-SHA256 over the version key, salted with the context's own
 * random secret. The secret is what crypto-shredding deletes: without it no version key can rebuild the
 * context key, so the context's data is gone even though the named key lives on.
 */
export function deriveContextKey(
  versionKey: Uint8Array,
  contextSecret: Uint8Array,
  context: Uint8Array,
): Uint8Array {
  return hkdf('sha256', versionKey, contextSecret, concatBytes(DERIVE_INFO, context), 32);
}

export function encryptWith(
  type: KeyType,
  key: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  return aeadSealWithRandomNonce(KEY_TYPES[type].aead!, key, plaintext, aad);
}

export function decryptWith(type: KeyType, key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array {
  return aeadOpenWithNonce(KEY_TYPES[type].aead!, key, sealed, aad);
}

export async function signWith(
  type: KeyType,
  key: Uint8Array,
  message: Uint8Array,
  scheme: RsaSignatureScheme,
): Promise<Uint8Array> {
  if (type === 'ed25519' || type === 'ecdsa-p256') return sign(type, key, message);
  return rsaSign(key, message, scheme);
}

export async function verifyWith(
  type: KeyType,
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
  scheme: RsaSignatureScheme,
): Promise<boolean> {
  if (type === 'ed25519' || type === 'ecdsa-p256') return verify(type, publicKey, message, signature);
  return rsaVerify(publicKey, message, signature, scheme);
}

export function macWith(key: Uint8Array, message: Uint8Array): Uint8Array {
  return hmac('sha256', key, message);
}

export function macEquals(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && constantTimeEqual(a, b);
}
