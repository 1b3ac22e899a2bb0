/**
 * JWE compact serialization through `jose`, for interoperability with JOSE ecosystems. Only an allow-list of
 * algorithms is accepted on decrypt: RSA-OAEP-256 and ECDH-ES+A256KW for key management, A256GCM for content.
 * RSA1_5 (Bleichenbacher), `dir` and password-based modes are refused, so a token cannot choose a weaker path.
 */
import type { JWK } from 'jose';
import { EnsealError, ErrorCode, decryptFailed, toBytes, unsupported } from '../crypto/index.js';

// jose is imported on first use: it is large, and importing the formats layer should not pay for it.
const jose = () => import('jose');

export type JweKeyAlgorithm = 'RSA-OAEP-256' | 'ECDH-ES+A256KW';
const CONTENT = 'A256GCM';
const ALLOWED_KEY_ALGS: readonly JweKeyAlgorithm[] = ['RSA-OAEP-256', 'ECDH-ES+A256KW'];

export interface JweKeyPair {
  publicJwk: JWK;
  privateJwk: JWK;
}

/** A key pair for JWE: RSA-3072 for RSA-OAEP-256, or X25519 / P-256 for ECDH-ES+A256KW. */
export async function generateJweKeyPair(
  alg: JweKeyAlgorithm,
  curve: 'X25519' | 'P-256' = 'X25519',
): Promise<JweKeyPair> {
  const { generateKeyPair, exportJWK } = await jose();
  const pair =
    alg === 'RSA-OAEP-256'
      ? await generateKeyPair(alg, { modulusLength: 3072, extractable: true })
      : await generateKeyPair(alg, { crv: curve, extractable: true });
  return {
    publicJwk: { ...(await exportJWK(pair.publicKey)), alg },
    privateJwk: { ...(await exportJWK(pair.privateKey)), alg },
  };
}

function keyAlgOf(jwk: JWK, requested?: JweKeyAlgorithm): JweKeyAlgorithm {
  const alg = (requested ??
    jwk.alg ??
    (jwk.kty === 'RSA' ? 'RSA-OAEP-256' : 'ECDH-ES+A256KW')) as JweKeyAlgorithm;
  if (!ALLOWED_KEY_ALGS.includes(alg)) throw unsupported(`JWE key algorithm "${alg}" is not allowed`);
  return alg;
}

/**
 * Encrypts to a public JWK and returns a compact JWE (A256GCM content encryption).
 *
 * @example
 * ```ts
 * const { publicJwk, privateJwk } = await generateJweKeyPair('ECDH-ES+A256KW');
 * const jwe = await encryptJwe('hello', publicJwk);
 * utf8Decode(await decryptJwe(jwe, privateJwk)); // 'hello'
 * ```
 */
export async function encryptJwe(
  payload: string | Uint8Array,
  publicJwk: JWK,
  options: { alg?: JweKeyAlgorithm; kid?: string } = {},
): Promise<string> {
  const alg = keyAlgOf(publicJwk, options.alg);
  const { importJWK, CompactEncrypt } = await jose();
  let key;
  try {
    key = await importJWK(publicJwk, alg);
  } catch (cause) {
    throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'the public JWK is not usable for ' + alg, { cause });
  }
  return new CompactEncrypt(toBytes('payload', payload))
    .setProtectedHeader({ alg, enc: CONTENT, ...(options.kid ? { kid: options.kid } : {}) })
    .encrypt(key);
}

/** Decrypts a compact JWE with a private JWK. Every failure past parsing is ERR_DECRYPT_FAILED. */
export async function decryptJwe(jwe: string, privateJwk: JWK): Promise<Uint8Array> {
  if (typeof jwe !== 'string' || jwe.split('.').length !== 5)
    throw new EnsealError(ErrorCode.MALFORMED, 'JWE: not a compact JWE');
  const alg = keyAlgOf(privateJwk);
  const { importJWK, compactDecrypt } = await jose();
  let key;
  try {
    key = await importJWK(privateJwk, alg);
  } catch (cause) {
    throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'the private JWK is not usable for ' + alg, { cause });
  }
  try {
    const { plaintext } = await compactDecrypt(jwe, key, {
      keyManagementAlgorithms: [alg],
      contentEncryptionAlgorithms: [CONTENT],
    });
    return plaintext;
  } catch {
    throw decryptFailed();
  }
}
