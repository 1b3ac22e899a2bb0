/** Digital signatures: Ed25519 (RFC 8032) and ECDSA P-256 with SHA-256 (FIPS 186-5), raw r||s encoding. */
import { runtime } from '#runtime';
import { assertBytes } from './bytes.js';
import { randomBytes } from './random.js';

export type SignatureAlgorithm = 'ed25519' | 'ecdsa-p256';

export interface SigningKeyPair {
  algorithm: SignatureAlgorithm;
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

function p256Scalar(): Uint8Array {
  // Rejection sampling keeps the scalar uniform in [1, n-1].
  for (;;) {
    const candidate = randomBytes(32);
    let n = 0n;
    for (const b of candidate) n = (n << 8n) | BigInt(b);
    if (n > 0n && n < P256_ORDER) return candidate;
  }
}

export function generateSigningKeyPair(algorithm: SignatureAlgorithm): SigningKeyPair {
  if (algorithm === 'ed25519') {
    const privateKey = randomBytes(32);
    return { algorithm, privateKey, publicKey: runtime.ed25519PublicKey(privateKey) };
  }
  const privateKey = p256Scalar();
  return { algorithm, privateKey, publicKey: runtime.p256PublicKey(privateKey) };
}

export function signingPublicKey(algorithm: SignatureAlgorithm, privateKey: Uint8Array): Uint8Array {
  assertBytes('privateKey', privateKey, 32);
  return algorithm === 'ed25519' ? runtime.ed25519PublicKey(privateKey) : runtime.p256PublicKey(privateKey);
}

export function sign(algorithm: SignatureAlgorithm, privateKey: Uint8Array, message: Uint8Array): Uint8Array {
  assertBytes('privateKey', privateKey, 32);
  assertBytes('message', message);
  return algorithm === 'ed25519'
    ? runtime.ed25519Sign(privateKey, message)
    : runtime.p256Sign(privateKey, message);
}

/** True only for a valid signature; malformed keys or signatures return false rather than throwing. */
export function verify(
  algorithm: SignatureAlgorithm,
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  assertBytes('message', message);
  if (!(publicKey instanceof Uint8Array) || !(signature instanceof Uint8Array)) return false;
  if (algorithm === 'ed25519') {
    if (publicKey.length !== 32 || signature.length !== 64) return false;
    return runtime.ed25519Verify(publicKey, message, signature);
  }
  if (publicKey.length !== 65 || signature.length !== 64) return false;
  return runtime.p256Verify(publicKey, message, signature);
}
