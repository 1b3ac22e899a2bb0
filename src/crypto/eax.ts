/**
 * EAX mode (Bellare, Rogaway, Wagner, 2004), as PyCryptodome's `AES.MODE_EAX` implements it. Written here
 * because no maintained JavaScript library offers EAX and enseal must read the values the seed documents
 * produced with it. It is composed only from AES-CTR and AES-CMAC (OMAC1), each from the runtime:
 *
 *   N' = OMAC⁰(N),  H' = OMAC¹(H),  C = CTR(N', M),  C' = OMAC²(C),  tag = N' ⊕ H' ⊕ C'
 *
 * where OMACᵗ(X) = CMAC(K, [t]₁₂₈ ‖ X). Checked against PyCryptodome in both directions
 * (test/formats/legacy-interop.test.ts). New data should use the envelope format instead.
 */
import { aesCmac, aesCtr } from './aes-modes.js';
import { assertBytes, concatBytes } from './bytes.js';
import { constantTimeEqual } from './compare.js';
import { decryptFailed, invalidArgument } from './errors.js';

const EMPTY = new Uint8Array(0);

function omac(key: Uint8Array, tweak: number, data: Uint8Array): Uint8Array {
  const block = new Uint8Array(16);
  block[15] = tweak;
  return aesCmac(key, concatBytes(block, data));
}

function tagOf(nPrime: Uint8Array, hPrime: Uint8Array, cPrime: Uint8Array, length: number): Uint8Array {
  const tag = new Uint8Array(16);
  for (let i = 0; i < 16; i++) tag[i] = nPrime[i]! ^ hPrime[i]! ^ cPrime[i]!;
  return tag.subarray(0, length);
}

function check(key: Uint8Array, nonce: Uint8Array, header: Uint8Array, tagLength: number): void {
  assertBytes('key', key, 16, 24, 32);
  assertBytes('nonce', nonce);
  if (nonce.length === 0) throw invalidArgument('nonce', 'must not be empty');
  assertBytes('header', header);
  if (!Number.isInteger(tagLength) || tagLength < 4 || tagLength > 16)
    throw invalidArgument('tagLength', 'must be 4 to 16');
}

/** EAX encryption; returns ciphertext and tag separately, as PyCryptodome's encrypt_and_digest does. */
export function eaxEncrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  header: Uint8Array = EMPTY,
  tagLength = 16,
): { ciphertext: Uint8Array; tag: Uint8Array } {
  check(key, nonce, header, tagLength);
  assertBytes('plaintext', plaintext);
  const nPrime = omac(key, 0, nonce);
  const ciphertext = aesCtr(key, nPrime, plaintext);
  const tag = tagOf(nPrime, omac(key, 1, header), omac(key, 2, ciphertext), tagLength);
  return { ciphertext, tag };
}

/** EAX decryption; the tag is verified in constant time before any plaintext is produced. */
export function eaxDecrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
  header: Uint8Array = EMPTY,
): Uint8Array {
  assertBytes('tag', tag);
  check(key, nonce, header, tag.length);
  assertBytes('ciphertext', ciphertext);
  const nPrime = omac(key, 0, nonce);
  const expected = tagOf(nPrime, omac(key, 1, header), omac(key, 2, ciphertext), tag.length);
  if (!constantTimeEqual(expected, tag)) throw decryptFailed();
  return aesCtr(key, nPrime, ciphertext);
}

/**
 * EAX decryption WITHOUT authentication: CTR under N' only. Exists solely for values whose tag was thrown
 * away (the seeds' `base64(nonce ‖ ciphertext)`); an attacker can flip any plaintext bit undetected.
 */
export function eaxDecryptUnauthenticated(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
): Uint8Array {
  check(key, nonce, EMPTY, 16);
  assertBytes('ciphertext', ciphertext);
  return aesCtr(key, omac(key, 0, nonce), ciphertext);
}
