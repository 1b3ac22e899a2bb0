/**
 * Authenticated encryption with associated data. Algorithms are data: one table gives each AEAD's key, nonce
 * and tag lengths and its safe usage bound, and every call checks its inputs against that table.
 *
 * Usage bounds (messages per key with uniformly random nonces), which keysets enforce by rotating first:
 * - AES-256-GCM and ChaCha20-Poly1305, 96-bit nonces: 2^32 messages keeps the nonce-collision probability
 *   below 2^-32 (NIST SP 800-38D §8.3).
 * - XChaCha20-Poly1305, 192-bit nonces: random nonces are safe for 2^64 messages and beyond; the bound
 *   here is set by the per-key data limit instead.
 */
import { runtime } from '#runtime';
import type { RuntimeAead } from './runtime/types.js';
import { assertBytes, concatBytes } from './bytes.js';
import { decryptFailed, unsupported } from './errors.js';
import { randomPublicBytes } from './random.js';

export type AeadAlgorithm = 'aes-256-gcm' | 'chacha20-poly1305' | 'xchacha20-poly1305';

export interface AeadParams {
  readonly keyLength: number;
  readonly nonceLength: number;
  readonly tagLength: number;
  /** Messages one key may seal with random nonces before it must be rotated. */
  readonly maxMessages: number;
}

export const AEAD_PARAMS: Readonly<Record<AeadAlgorithm, AeadParams>> = Object.freeze({
  'aes-256-gcm': { keyLength: 32, nonceLength: 12, tagLength: 16, maxMessages: 2 ** 32 },
  'chacha20-poly1305': { keyLength: 32, nonceLength: 12, tagLength: 16, maxMessages: 2 ** 32 },
  'xchacha20-poly1305': {
    keyLength: 32,
    nonceLength: 24,
    tagLength: 16,
    maxMessages: Number.MAX_SAFE_INTEGER,
  },
});

const EMPTY = new Uint8Array(0);

/** Looks up an AEAD's parameters; throws ERR_UNSUPPORTED for anything not in the table. */
export function aeadParams(alg: string): AeadParams {
  const params = (AEAD_PARAMS as Record<string, AeadParams | undefined>)[alg];
  if (params === undefined || !Object.hasOwn(AEAD_PARAMS, alg))
    throw unsupported(`unsupported AEAD "${alg}"`);
  return params;
}

function check(alg: AeadAlgorithm, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array): AeadParams {
  const params = aeadParams(alg);
  assertBytes('key', key, params.keyLength);
  assertBytes('nonce', nonce, params.nonceLength);
  assertBytes('aad', aad);
  return params;
}

/** XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha §2): HChaCha20 subkey, then RFC 8439 with 0^4 || nonce[16:]. */
function xchachaInputs(key: Uint8Array, nonce: Uint8Array): [Uint8Array, Uint8Array] {
  const subkey = runtime.hchacha20(key, nonce.subarray(0, 16));
  const inner = new Uint8Array(12);
  inner.set(nonce.subarray(16, 24), 4);
  return [subkey, inner];
}

/**
 * Encrypts and authenticates `plaintext`, binding `aad`. Returns ciphertext || tag.
 *
 * The nonce must never repeat under one key. Use {@link randomBytes} for it, and let a keyset count
 * messages so the key rotates before {@link AeadParams.maxMessages}.
 *
 * @example
 * ```ts
 * const key = randomBytes(32);
 * const nonce = randomBytes(12);
 * const sealed = aeadSeal('aes-256-gcm', key, nonce, utf8Encode('hello'), utf8Encode('row 42'));
 * utf8Decode(aeadOpen('aes-256-gcm', key, nonce, sealed, utf8Encode('row 42'))); // 'hello'
 * ```
 */
export function aeadSeal(
  alg: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array = EMPTY,
): Uint8Array {
  return aeadSealWithRoom(alg, key, nonce, plaintext, aad, 0);
}

/**
 * {@link aeadSeal} whose result starts with `room` bytes for the caller's header, which the caller MUST
 * overwrite (they may be uninitialised). Formats that put a header before the ciphertext then need no second
 * copy of it, which matters for large values.
 */
export function aeadSealWithRoom(
  alg: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  room: number,
): Uint8Array {
  check(alg, key, nonce, aad);
  assertBytes('plaintext', plaintext);
  if (alg === 'xchacha20-poly1305') {
    const [subkey, inner] = xchachaInputs(key, nonce);
    try {
      return runtime.aeadSeal('chacha20-poly1305', subkey, inner, plaintext, aad, room);
    } finally {
      subkey.fill(0);
    }
  }
  return runtime.aeadSeal(alg as RuntimeAead, key, nonce, plaintext, aad, room);
}

/**
 * {@link aeadSeal} with the tag returned separately (as WebCrypto-style "detached" APIs do), which saves
 * joining the two into a new buffer: bulk formats such as age's STREAM write both parts as they are.
 */
export function aeadSealDetached(
  alg: RuntimeAead & AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array = EMPTY,
): { ciphertext: Uint8Array; tag: Uint8Array } {
  check(alg, key, nonce, aad);
  assertBytes('plaintext', plaintext);
  return runtime.aeadSealDetached(alg, key, nonce, plaintext, aad);
}

/**
 * Verifies and decrypts ciphertext || tag. Throws ERR_DECRYPT_FAILED, with no detail, when the tag does not
 * verify; no plaintext is ever released from an unauthenticated ciphertext.
 */
export function aeadOpen(
  alg: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array = EMPTY,
): Uint8Array {
  const params = check(alg, key, nonce, aad);
  assertBytes('ciphertext', sealed);
  if (sealed.length < params.tagLength) throw decryptFailed();
  let out: Uint8Array | null;
  if (alg === 'xchacha20-poly1305') {
    const [subkey, inner] = xchachaInputs(key, nonce);
    out = runtime.aeadOpen('chacha20-poly1305', subkey, inner, sealed, aad);
    subkey.fill(0);
  } else {
    out = runtime.aeadOpen(alg as RuntimeAead, key, nonce, sealed, aad);
  }
  if (out === null) throw decryptFailed();
  return out;
}

/** Seal with a fresh random nonce and return nonce || ciphertext || tag. */
export function aeadSealWithRandomNonce(
  alg: AeadAlgorithm,
  key: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array = EMPTY,
): Uint8Array {
  const nonce = randomPublicBytes(aeadParams(alg).nonceLength);
  return concatBytes(nonce, aeadSeal(alg, key, nonce, plaintext, aad));
}

/** Inverse of {@link aeadSealWithRandomNonce}. */
export function aeadOpenWithNonce(
  alg: AeadAlgorithm,
  key: Uint8Array,
  data: Uint8Array,
  aad: Uint8Array = EMPTY,
): Uint8Array {
  const { nonceLength, tagLength } = aeadParams(alg);
  assertBytes('ciphertext', data);
  if (data.length < nonceLength + tagLength) throw decryptFailed();
  return aeadOpen(alg, key, data.subarray(0, nonceLength), data.subarray(nonceLength), aad);
}
