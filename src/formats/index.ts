/**
 * The formats layer: encodings of ciphertexts and keys that enseal or its peers read and write. Each format
 * lives in its own module; this file is the layer's public surface.
 */
export {
  ENVELOPE_VERSION,
  ENVELOPE_TEXT_PREFIX,
  sealEnvelope,
  openEnvelope,
  parseEnvelope,
  envelopeToText,
  envelopeFromText,
  envelopeBytes,
  isKeyCommitting,
  envelopeNonceLength,
  type EnvelopeSuite,
  type ParsedEnvelope,
  type PassphraseKdfParams,
  type SealInput,
} from './envelope.js';
export {
  sealWithPassphrase,
  openWithPassphrase,
  DEFAULT_PASSPHRASE_PARAMS,
  MAX_PASSPHRASE_PARAMS,
  type PassphraseSealOptions,
} from './passphrase-envelope.js';
export {
  ALGORITHMS_BY_PURPOSE,
  validateKeysetJson,
  type KeyAlgorithm,
  type KeyPurpose,
  type KeyStatus,
  type KeysetJson,
  type KeyVersionJson,
} from './keyset-json.js';
export {
  Fernet,
  generateFernetKey,
  fernetKeyFromPassword,
  FERNET_MAX_CLOCK_SKEW_SECONDS,
  type FernetDecryptOptions,
} from './fernet.js';
export { parsePhc, formatPhc, type PhcAlgorithm, type PhcHash } from './phc.js';
export {
  generateHpkeKeyPair,
  hpkeSeal,
  hpkeOpen,
  hpkeToText,
  hpkeFromText,
  parseHpkeHeader,
  type HpkeKeyPair,
  type HpkeOpenOptions,
  type HpkeSealOptions,
  type HpkeSuiteName,
} from './hpke.js';
export { generateJweKeyPair, encryptJwe, decryptJwe, type JweKeyAlgorithm, type JweKeyPair } from './jwe.js';
export { decryptLegacyEax, decryptLegacyEaxUnauthenticated, decryptLegacyRsaCbc } from './legacy.js';
export * from './age/index.js';
