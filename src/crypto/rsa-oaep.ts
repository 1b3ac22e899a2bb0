/**
 * RSA-OAEP with SHA-256 and MGF1-SHA-256 (RFC 8017 §7.1), through WebCrypto, which Node and browsers share,
 * so no runtime seam is needed. Used for the seeds' legacy hybrid format and for interop; new designs should
 * prefer HPKE.
 */
import { decryptFailed, EnsealError, ErrorCode } from './errors.js';
import { assertBytes } from './bytes.js';

const ALG = { name: 'RSA-OAEP', hash: 'SHA-256' } as const;

export interface RsaKeyPairDer {
  /** SubjectPublicKeyInfo, DER. */
  publicKey: Uint8Array;
  /** PKCS#8 PrivateKeyInfo, DER. */
  privateKey: Uint8Array;
}

// WebCrypto's typings want ArrayBuffer-backed views; enseal never hands it shared memory.
function bs(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>;
}

function subtle(): SubtleCrypto {
  return globalThis.crypto.subtle;
}

export async function rsaOaepGenerateKeyPair(
  modulusLength: 2048 | 3072 | 4096 = 3072,
): Promise<RsaKeyPairDer> {
  const pair = await subtle().generateKey(
    { ...ALG, modulusLength, publicExponent: new Uint8Array([1, 0, 1]) },
    true,
    ['encrypt', 'decrypt'],
  );
  return {
    publicKey: new Uint8Array(await subtle().exportKey('spki', pair.publicKey)),
    privateKey: new Uint8Array(await subtle().exportKey('pkcs8', pair.privateKey)),
  };
}

async function importKey(format: 'spki' | 'pkcs8', der: Uint8Array, usage: KeyUsage): Promise<CryptoKey> {
  try {
    return await subtle().importKey(format, bs(der), ALG, false, [usage]);
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

export async function rsaOaepEncrypt(publicKeySpki: Uint8Array, plaintext: Uint8Array, label?: Uint8Array) {
  assertBytes('publicKey', publicKeySpki);
  assertBytes('plaintext', plaintext);
  const key = await importKey('spki', publicKeySpki, 'encrypt');
  const params = label === undefined ? ALG : { ...ALG, label: bs(label) };
  return new Uint8Array(await subtle().encrypt(params, key, bs(plaintext)));
}

/** Decrypts; every failure becomes ERR_DECRYPT_FAILED so no padding oracle is exposed (Manger's attack). */
export async function rsaOaepDecrypt(
  privateKeyPkcs8: Uint8Array,
  ciphertext: Uint8Array,
  label?: Uint8Array,
) {
  assertBytes('privateKey', privateKeyPkcs8);
  assertBytes('ciphertext', ciphertext);
  const key = await importKey('pkcs8', privateKeyPkcs8, 'decrypt');
  try {
    const params = label === undefined ? ALG : { ...ALG, label: bs(label) };
    return new Uint8Array(await subtle().decrypt(params, key, bs(ciphertext)));
  } catch {
    throw decryptFailed();
  }
}
