/** Message digests and HMAC. */
import { runtime } from '#runtime';
import type { HashName } from './runtime/types.js';
import { assertBytes } from './bytes.js';
import { unsupported } from './errors.js';

export type { HashName } from './runtime/types.js';

const DIGEST_LENGTH: Readonly<Record<HashName, number>> = {
  sha1: 20,
  sha224: 28,
  sha256: 32,
  sha384: 48,
  sha512: 64,
};

/** Output length in bytes of `hash`; throws ERR_UNSUPPORTED for unknown names. */
export function digestLength(hash: HashName): number {
  const n = Object.hasOwn(DIGEST_LENGTH, hash) ? DIGEST_LENGTH[hash] : undefined;
  if (n === undefined) throw unsupported(`unsupported hash "${String(hash)}"`);
  return n;
}

export function digest(hash: HashName, data: Uint8Array): Uint8Array {
  digestLength(hash);
  assertBytes('data', data);
  return runtime.digest(hash, data);
}

export function sha256(data: Uint8Array): Uint8Array {
  return digest('sha256', data);
}

/** HMAC (RFC 2104). Compare tags with {@link constantTimeEqual}, never `===`. */
export function hmac(hash: HashName, key: Uint8Array, data: Uint8Array): Uint8Array {
  digestLength(hash);
  assertBytes('key', key);
  assertBytes('data', data);
  return runtime.hmac(hash, key, data);
}
