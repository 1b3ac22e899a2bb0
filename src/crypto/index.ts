/**
 * The crypto layer: typed, validated wrappers over platform cryptography. No I/O and no policy.
 * Everything above this layer imports from here, never from node:crypto.
 */
export {
  EnsealError,
  ErrorCode,
  decryptFailed,
  malformed,
  invalidArgument,
  unsupported,
  isEnsealError,
} from './errors.js';
export {
  assertBytes,
  assertInteger,
  concatBytes,
  wipe,
  utf8Encode,
  utf8Decode,
  toBytes,
  readUint32BE,
  writeUint32BE,
} from './bytes.js';
export {
  base64Encode,
  base64Decode,
  base64UrlEncode,
  base64UrlDecode,
  hexEncode,
  hexDecode,
} from './encoding.js';
export { randomBytes, randomPublicBytes, randomUint32 } from './random.js';
export { serviceAddress } from './address.js';
export { constantTimeEqual, constantTimeEqualHex } from './compare.js';
export {
  AEAD_PARAMS,
  aeadParams,
  aeadSeal,
  aeadSealWithRoom,
  aeadSealDetached,
  aeadOpen,
  aeadSealWithRandomNonce,
  aeadOpenWithNonce,
  type AeadAlgorithm,
  type AeadParams,
} from './aead.js';
export { digest, digestLength, hmac, sha256, type HashName } from './hash.js';
export { hkdf, pbkdf2, scrypt, SCRYPT_MAX_MEMORY, type ScryptCost } from './kdf.js';
export { argon2, argon2id, ARGON2_MAX_MEMORY_KIB, type Argon2Params } from './argon2.js';
export { x25519GenerateKeyPair, x25519PublicKey, x25519SharedSecret, type X25519KeyPair } from './x25519.js';
export {
  generateSigningKeyPair,
  signingPublicKey,
  sign,
  verify,
  type SignatureAlgorithm,
  type SigningKeyPair,
} from './signatures.js';
export { rsaOaepGenerateKeyPair, rsaOaepEncrypt, rsaOaepDecrypt, type RsaKeyPairDer } from './rsa-oaep.js';
export {
  rsaSigningGenerateKeyPair,
  rsaSign,
  rsaVerify,
  rsaPublicKeyFromPrivate,
  type RsaSignatureScheme,
  type RsaModulusLength,
} from './rsa-signatures.js';
export { aesCbcEncrypt, aesCbcEncryptWithRoom, aesCbcDecrypt, aesCtr, aesCmac } from './aes-modes.js';
export { eaxEncrypt, eaxDecrypt, eaxDecryptUnauthenticated } from './eax.js';
export { runtimeName } from './runtime-name.js';
