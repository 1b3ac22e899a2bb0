/**
 * RSA signatures (RSASSA-PSS and RSASSA-PKCS1-v1_5, SHA-256) through WebCrypto, which Node and browsers
 * share, so no runtime seam is needed. PSS uses a salt as long as the hash (RFC 8017 §9.1 recommends it, and
 * it is what most verifiers expect); PKCS#1 v1.5 exists for peers that cannot verify PSS.
 */
import { EnsealError, ErrorCode } from './errors.js';
import { assertBytes } from './bytes.js';
import type { RsaKeyPairDer } from './rsa-oaep.js';

export type RsaSignatureScheme = 'pss' | 'pkcs1v15';
export type RsaModulusLength = 2048 | 3072 | 4096;

const SALT_LENGTH = 32;

function algorithm(scheme: RsaSignatureScheme): RsaHashedImportParams {
  return { name: scheme === 'pss' ? 'RSA-PSS' : 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
}

function signParams(scheme: RsaSignatureScheme): AlgorithmIdentifier | RsaPssParams {
  return scheme === 'pss' ? { name: 'RSA-PSS', saltLength: SALT_LENGTH } : { name: 'RSASSA-PKCS1-v1_5' };
}

// WebCrypto's typings want ArrayBuffer-backed views; enseal never hands it shared memory.
function bs(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>;
}

/** Generates an RSA key pair (e = 65537) as DER: PKCS#8 private key, SPKI public key. */
export async function rsaSigningGenerateKeyPair(modulusLength: RsaModulusLength): Promise<RsaKeyPairDer> {
  if (modulusLength !== 2048 && modulusLength !== 3072 && modulusLength !== 4096) {
    throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'RSA modulus length must be 2048, 3072 or 4096');
  }
  const pair = await globalThis.crypto.subtle.generateKey(
    { ...algorithm('pss'), modulusLength, publicExponent: new Uint8Array([1, 0, 1]) },
    true,
    ['sign', 'verify'],
  );
  return {
    publicKey: new Uint8Array(await globalThis.crypto.subtle.exportKey('spki', pair.publicKey)),
    privateKey: new Uint8Array(await globalThis.crypto.subtle.exportKey('pkcs8', pair.privateKey)),
  };
}

async function importKey(
  format: 'spki' | 'pkcs8',
  der: Uint8Array,
  scheme: RsaSignatureScheme,
): Promise<CryptoKey> {
  try {
    return await globalThis.crypto.subtle.importKey(format, bs(der), algorithm(scheme), true, [
      format === 'spki' ? 'verify' : 'sign',
    ]);
  } catch (cause) {
    throw new EnsealError(
      ErrorCode.INVALID_ARGUMENT,
      `RSA ${format === 'spki' ? 'public' : 'private'} key is invalid`,
      {
        cause,
      },
    );
  }
}

/** Signs `message` with a PKCS#8 RSA private key. */
export async function rsaSign(
  privateKeyPkcs8: Uint8Array,
  message: Uint8Array,
  scheme: RsaSignatureScheme = 'pss',
): Promise<Uint8Array> {
  assertBytes('message', message);
  const key = await importKey('pkcs8', privateKeyPkcs8, scheme);
  return new Uint8Array(await globalThis.crypto.subtle.sign(signParams(scheme), key, bs(message)));
}

/** Verifies a signature with an SPKI RSA public key; false for any invalid signature. */
export async function rsaVerify(
  publicKeySpki: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
  scheme: RsaSignatureScheme = 'pss',
): Promise<boolean> {
  assertBytes('message', message);
  assertBytes('signature', signature);
  const key = await importKey('spki', publicKeySpki, scheme);
  try {
    return await globalThis.crypto.subtle.verify(signParams(scheme), key, bs(signature), bs(message));
  } catch {
    return false;
  }
}

/** The SPKI public key of a PKCS#8 RSA private key (through JWK, which carries n and e). */
export async function rsaPublicKeyFromPrivate(privateKeyPkcs8: Uint8Array): Promise<Uint8Array> {
  const key = await importKey('pkcs8', privateKeyPkcs8, 'pss');
  const jwk = await globalThis.crypto.subtle.exportKey('jwk', key);
  const pub = await globalThis.crypto.subtle.importKey(
    'jwk',
    { kty: 'RSA', n: jwk.n, e: jwk.e, alg: jwk.alg, ext: true },
    algorithm('pss'),
    true,
    ['verify'],
  );
  return new Uint8Array(await globalThis.crypto.subtle.exportKey('spki', pub));
}
