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
