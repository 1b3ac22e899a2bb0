/**
 * The keys layer: keysets with versions, purposes and rotation; key-encryption keys; password hashing and
 * password-derived keys. This file is the layer's public surface.
 */
export { Keyset, type AadOption, type GenerateKeysetOptions, type KeyVersionInfo } from './keyset.js';
export { KeyEncryptionKey } from './kek.js';
export {
  sealKeyset,
  sealKeysetWithPassphrase,
  openKeyset,
  openKeysetWithPassphrase,
  type SealedKeyset,
} from './sealed-keyset.js';
export { defaultUsageLimit } from './usage-limits.js';
export {
  hashPassword,
  verifyPassword,
  assertPassword,
  needsRehash,
  deriveKeyFromPassword,
  DEFAULT_PASSWORD_POLICY,
  type PasswordPolicy,
} from './passwords.js';
export {
  splitSecret,
  parseShare,
  shareIndex,
  combineShares,
  checkShamirParams,
  DEFAULT_SHAMIR,
  type ShamirParams,
} from './shamir.js';
