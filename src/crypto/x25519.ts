/** X25519 key agreement (RFC 7748). */
import { runtime } from '#runtime';
import { assertBytes } from './bytes.js';
import { EnsealError, ErrorCode } from './errors.js';
import { randomBytes } from './random.js';

export interface X25519KeyPair {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

export function x25519GenerateKeyPair(): X25519KeyPair {
  const privateKey = randomBytes(32);
  return { privateKey, publicKey: runtime.x25519PublicKey(privateKey) };
}

export function x25519PublicKey(privateKey: Uint8Array): Uint8Array {
  assertBytes('privateKey', privateKey, 32);
  return runtime.x25519PublicKey(privateKey);
}

/**
 * The shared secret. Throws when the peer's public key is a low-order point, which would make the output
 * all zeros and independent of our private key (RFC 7748 §6.1, age's "contributory" check).
 */
export function x25519SharedSecret(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  assertBytes('privateKey', privateKey, 32);
  assertBytes('publicKey', publicKey, 32);
  let shared: Uint8Array;
  try {
    shared = runtime.x25519(privateKey, publicKey);
  } catch (cause) {
    throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'X25519 public key is invalid', { cause });
  }
  let acc = 0;
  for (const b of shared) acc |= b;
  if (acc === 0) throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'X25519 public key is a low-order point');
  return shared;
}
