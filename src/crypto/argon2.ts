/**
 * Argon2id (RFC 9106) through hash-wasm: Node 20 has no native Argon2, and hash-wasm's WebAssembly build runs
 * unchanged in browsers and is several times faster than pure JavaScript. Asynchronous because instantiating
 * WebAssembly is. hash-wasm does not take RFC 9106's associated data (X); the rare caller that needs it is
 * served by @noble/hashes' audited pure-JS Argon2 instead, so the RFC vectors run through this module whole.
 */
import { assertBytes, assertInteger } from './bytes.js';

// Both implementations are imported on first use: loading them cost about 60 ms at every start-up, and most
// processes (CLI commands, services without password hashing) never derive an Argon2 key.

export interface Argon2Params {
  /** Memory in KiB. */
  memoryKiB: number;
  /** Passes over memory. */
  iterations: number;
  /** Lanes. */
  parallelism: number;
}

/** Largest memory accepted from a parameter string: 4 GiB, so hostile input cannot exhaust the host. */
export const ARGON2_MAX_MEMORY_KIB = 4 * 1024 * 1024;

function check(password: Uint8Array, salt: Uint8Array, params: Argon2Params, length: number) {
  assertBytes('password', password);
  assertBytes('salt', salt);
  if (salt.length < 8) assertBytes('salt', salt, 8);
  assertInteger('parallelism', params.parallelism, 1, 255);
  assertInteger('memoryKiB', params.memoryKiB, 8 * params.parallelism, ARGON2_MAX_MEMORY_KIB);
  assertInteger('iterations', params.iterations, 1, 2 ** 16);
  assertInteger('length', length, 4, 1024);
}

/** Argon2id key derivation. For secret/associated data (RFC 9106 K and X) use {@link argon2} instead. */
export async function argon2id(
  password: Uint8Array,
  salt: Uint8Array,
  params: Argon2Params,
  length = 32,
): Promise<Uint8Array> {
  return argon2('argon2id', password, salt, params, length);
}

/** Any Argon2 variant; argon2d and argon2i exist for the RFC 9106 vectors and legacy hashes only. */
export async function argon2(
  variant: 'argon2id' | 'argon2i' | 'argon2d',
  password: Uint8Array,
  salt: Uint8Array,
  params: Argon2Params,
  length = 32,
  secret?: Uint8Array,
  associatedData?: Uint8Array,
): Promise<Uint8Array> {
  check(password, salt, params, length);
  if (secret !== undefined) assertBytes('secret', secret);
  if (associatedData !== undefined && associatedData.length > 0) {
    assertBytes('associatedData', associatedData);
    const { argon2dAsync, argon2iAsync, argon2idAsync } = await import('@noble/hashes/argon2.js');
    const noble =
      variant === 'argon2id' ? argon2idAsync : variant === 'argon2i' ? argon2iAsync : argon2dAsync;
    return noble(password, salt, {
      t: params.iterations,
      m: params.memoryKiB,
      p: params.parallelism,
      dkLen: length,
      key: secret,
      personalization: associatedData,
    });
  }
  const wasm = await import('hash-wasm');
  const fn = variant === 'argon2id' ? wasm.argon2id : variant === 'argon2i' ? wasm.argon2i : wasm.argon2d;
  return fn({
    password,
    salt,
    secret,
    parallelism: params.parallelism,
    iterations: params.iterations,
    memorySize: params.memoryKiB,
    hashLength: length,
    outputType: 'binary',
  });
}
