/**
 * Key derivation: HKDF for deriving keys from keys, PBKDF2 and scrypt for deriving keys from passwords.
 * Argon2id, the default for passwords, lives in argon2.ts because it is asynchronous (WebAssembly).
 */
import { runtime } from '#runtime';
import type { HashName, ScryptCost } from './runtime/types.js';
import { assertBytes, assertInteger } from './bytes.js';
import { digestLength } from './hash.js';
import { invalidArgument } from './errors.js';

export type { ScryptCost } from './runtime/types.js';

const EMPTY = new Uint8Array(0);

/**
 * HKDF (RFC 5869). `salt` may be empty (the RFC then uses a zero block); `info` binds the derived key to its
 * purpose and must differ for every distinct use.
 */
export function hkdf(
  hash: HashName,
  ikm: Uint8Array,
  salt: Uint8Array = EMPTY,
  info: Uint8Array = EMPTY,
  length = 32,
): Uint8Array {
  const hashLen = digestLength(hash);
  assertBytes('ikm', ikm);
  assertBytes('salt', salt);
  assertBytes('info', info);
  assertInteger('length', length, 1, 255 * hashLen);
  return runtime.hkdf(hash, ikm, salt, info, length);
}

/** PBKDF2 (RFC 8018 §5.2). At least 1 iteration; password hashing should use passwords.ts defaults. */
export function pbkdf2(
  hash: HashName,
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  length: number,
): Uint8Array {
  digestLength(hash);
  assertBytes('password', password);
  assertBytes('salt', salt);
  assertInteger('iterations', iterations, 1, 2 ** 32 - 1);
  assertInteger('length', length, 1, 2 ** 20);
  return runtime.pbkdf2(hash, password, salt, iterations, length);
}

/** Largest scrypt memory (128·N·r bytes) accepted, so hostile parameter strings cannot exhaust memory. */
export const SCRYPT_MAX_MEMORY = 2 ** 30;

/** scrypt (RFC 7914). Rejects N that is not a power of two and costs beyond {@link SCRYPT_MAX_MEMORY}. */
export function scrypt(password: Uint8Array, salt: Uint8Array, cost: ScryptCost, length = 32): Uint8Array {
  assertBytes('password', password);
  assertBytes('salt', salt);
  assertInteger('N', cost.N, 2, 2 ** 30);
  if ((cost.N & (cost.N - 1)) !== 0) throw invalidArgument('N', 'must be a power of two');
  assertInteger('r', cost.r, 1, 64);
  assertInteger('p', cost.p, 1, 64);
  assertInteger('length', length, 1, 2 ** 20);
  if (128 * cost.N * cost.r > SCRYPT_MAX_MEMORY)
    throw invalidArgument('scrypt cost', 'exceeds the 1 GiB memory limit');
  return runtime.scrypt(password, salt, cost, length);
}
