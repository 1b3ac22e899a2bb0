/** The CSPRNG. Every nonce, salt and key in enseal comes from here or from a counter its format defines. */
import { runtime } from '#runtime';
import { assertInteger } from './bytes.js';

/** Returns `length` bytes from the platform CSPRNG (OpenSSL in Node, getRandomValues in browsers). */
export function randomBytes(length: number): Uint8Array {
  assertInteger('length', length, 0, 2 ** 31 - 1);
  const out = new Uint8Array(length);
  runtime.randomFill(out);
  return out;
}

/** A uniformly random unsigned 32-bit integer. */
export function randomUint32(): number {
  const b = randomBytes(4);
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

const POOL_SIZE = 4096;
let pool = new Uint8Array(0);
let poolOffset = 0;

/**
 * Random bytes for values that are public by design — nonces and salts — served from a 4 KiB buffer refilled
 * from the same CSPRNG. Each call to the platform CSPRNG costs about 2 µs in Node, a third of sealing a small
 * value, so drawing nonces from a pool keeps envelopes close to raw AES-GCM speed. Never use this for keys:
 * key material must not sit in a long-lived buffer before use.
 */
export function randomPublicBytes(length: number): Uint8Array {
  assertInteger('length', length, 0, 256);
  if (poolOffset + length > pool.length) {
    pool = new Uint8Array(POOL_SIZE);
    runtime.randomFill(pool);
    poolOffset = 0;
  }
  const out = pool.slice(poolOffset, poolOffset + length);
  // Bytes handed out are erased from the pool, so no nonce can ever be handed out twice.
  pool.fill(0, poolOffset, poolOffset + length);
  poolOffset += length;
  return out;
}
