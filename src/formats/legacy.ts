/**
 * Decoders for the legacy formats shown in the seed documents, so data can be migrated off them. They are
 * decrypt-only and labelled for what they are:
 *
 * - PyCryptodome AES-EAX stored as `base64(nonce16 ‖ ciphertext)`: the seed computes the tag and throws it
 *   away, so these values are UNAUTHENTICATED. `decryptLegacyEaxUnauthenticated` reads them; anyone who could
 *   write the database could have flipped plaintext bits. When the tag was kept (`nonce ‖ ciphertext ‖ tag`),
 *   `decryptLegacyEax` verifies it.
 * - RSA-OAEP(SHA-256)-wrapped AES-CBC/PKCS#7 as `encrypted_key ‖ iv16 ‖ ciphertext`: UNAUTHENTICATED too (CBC
 *   without a MAC). The AES key is unwrapped with OAEP, whose failures all look alike.
 *
 * Every failure is ERR_DECRYPT_FAILED (no padding oracle); undecodable base64 is ERR_MALFORMED.
 */
import {
  aesCbcDecrypt,
  base64Decode,
  decryptFailed,
  eaxDecrypt,
  eaxDecryptUnauthenticated,
  malformed,
  rsaOaepDecrypt,
} from '../crypto/index.js';

const EAX_NONCE = 16;
const EAX_TAG = 16;

function decodeValue(value: string | Uint8Array): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value !== 'string') throw malformed('legacy value', 'expected base64 text or bytes');
  return base64Decode(value.trim(), 'legacy value');
}

/**
 * Reads the seeds' EAX values, `base64(nonce ‖ ciphertext)` with the tag discarded. UNAUTHENTICATED: use only
 * to migrate, and re-encrypt the result into an envelope straight away.
 */
export function decryptLegacyEaxUnauthenticated(value: string | Uint8Array, key: Uint8Array): Uint8Array {
  const raw = decodeValue(value);
  if (raw.length < EAX_NONCE) throw decryptFailed();
  return eaxDecryptUnauthenticated(key, raw.subarray(0, EAX_NONCE), raw.subarray(EAX_NONCE));
}

/** Reads EAX values stored with their tag, `base64(nonce ‖ ciphertext ‖ tag)`, verifying the tag. */
export function decryptLegacyEax(
  value: string | Uint8Array,
  key: Uint8Array,
  header?: Uint8Array,
): Uint8Array {
  const raw = decodeValue(value);
  if (raw.length < EAX_NONCE + EAX_TAG) throw decryptFailed();
  return eaxDecrypt(
    key,
    raw.subarray(0, EAX_NONCE),
    raw.subarray(EAX_NONCE, raw.length - EAX_TAG),
    raw.subarray(raw.length - EAX_TAG),
    header,
  );
}

/** The RSA modulus length in bytes of a PKCS#8 RSA key, read from its DER without a full ASN.1 parser. */
async function modulusBytes(privateKeyPkcs8: Uint8Array): Promise<number> {
  const key = await globalThis.crypto.subtle.importKey(
    'pkcs8',
    privateKeyPkcs8 as Uint8Array<ArrayBuffer>,
    { name: 'RSA-OAEP', hash: 'SHA-256' },
    true,
    ['decrypt'],
  );
  return Math.ceil((key.algorithm as RsaHashedKeyAlgorithm).modulusLength / 8);
}

/**
 * Reads `encrypted_key ‖ iv ‖ ciphertext` (RSA-OAEP-SHA256 wrapping an AES key, AES-CBC with PKCS#7).
 * UNAUTHENTICATED: use only to migrate.
 */
export async function decryptLegacyRsaCbc(
  value: string | Uint8Array,
  privateKeyPkcs8: Uint8Array,
): Promise<Uint8Array> {
  const raw = decodeValue(value);
  let k: number;
  try {
    k = await modulusBytes(privateKeyPkcs8);
  } catch {
    throw malformed('RSA private key', 'not a PKCS#8 RSA key');
  }
  if (raw.length < k + 16 + 16) throw decryptFailed();
  const aesKey = await rsaOaepDecrypt(privateKeyPkcs8, raw.subarray(0, k));
  if (![16, 24, 32].includes(aesKey.length)) throw decryptFailed();
  const plaintext = aesCbcDecrypt(aesKey, raw.subarray(k, k + 16), raw.subarray(k + 16));
  if (plaintext === null) throw decryptFailed();
  return plaintext;
}
