/**
 * The named-key types the key manager offers, each with one purpose. Purpose is fixed at creation and
 * enforced on every call, so an encryption key can never sign and a signing key can never encrypt; mixing
 * purposes under one key is how cross-protocol attacks start.
 */
import { invalidArgument, type AeadAlgorithm } from '../crypto/index.js';

export type KeyType =
  | 'aes256-gcm96'
  | 'chacha20-poly1305'
  | 'xchacha20-poly1305'
  | 'ed25519'
  | 'ecdsa-p256'
  | 'rsa-2048'
  | 'rsa-3072'
  | 'rsa-4096'
  | 'hmac';

export type KeyPurpose = 'encrypt' | 'sign' | 'mac';

export interface KeyTypeInfo {
  readonly purpose: KeyPurpose;
  /** The AEAD behind an encryption key. */
  readonly aead?: AeadAlgorithm;
  /**
   * Safe number of encryptions per version with random nonces. 96-bit nonces: 2^31, half of NIST SP 800-38D's
   * 2^32 bound, so rotation happens well before it even if reservations were lost. 192-bit nonces: no
   * practical bound, so none is enforced.
   */
  readonly maxEncryptions?: number;
}

const DAY = 24 * 60 * 60 * 1000;
const GCM_LIMIT = 2 ** 31;

export const KEY_TYPES: Readonly<Record<KeyType, KeyTypeInfo>> = Object.freeze({
  'aes256-gcm96': { purpose: 'encrypt', aead: 'aes-256-gcm', maxEncryptions: GCM_LIMIT },
  'chacha20-poly1305': { purpose: 'encrypt', aead: 'chacha20-poly1305', maxEncryptions: GCM_LIMIT },
  'xchacha20-poly1305': { purpose: 'encrypt', aead: 'xchacha20-poly1305' },
  ed25519: { purpose: 'sign' },
  'ecdsa-p256': { purpose: 'sign' },
  'rsa-2048': { purpose: 'sign' },
  'rsa-3072': { purpose: 'sign' },
  'rsa-4096': { purpose: 'sign' },
  hmac: { purpose: 'mac' },
});

/**
 * Default rotation periods by purpose: encryption and MAC keys yearly (NIST SP 800-57's originator-usage
 * period allows up to two years; AWS KMS rotates yearly), signing keys every 90 days, as the seeds advise.
 */
export const DEFAULT_ROTATION_PERIOD_MS: Readonly<Record<KeyPurpose, number>> = Object.freeze({
  encrypt: 365 * DAY,
  mac: 365 * DAY,
  sign: 90 * DAY,
});

/** Shortest automatic rotation period accepted (Vault's minimum, one hour). Zero turns rotation off. */
export const MIN_ROTATION_PERIOD_MS = 60 * 60 * 1000;

export function isKeyType(value: unknown): value is KeyType {
  return typeof value === 'string' && Object.hasOwn(KEY_TYPES, value);
}

export function keyTypeInfo(type: string): KeyTypeInfo {
  if (!isKeyType(type)) {
    throw invalidArgument('type', `must be one of ${Object.keys(KEY_TYPES).join(', ')}`);
  }
  return KEY_TYPES[type];
}
