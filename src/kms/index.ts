/**
 * The kms layer: a key manager over a store. Seal and unseal, named keys with versions and rotation
 * policies, data keys, crypto-shredding of derived contexts, backup and restore, a tamper-evident audit log
 * and usage monitoring. This file is the layer's public surface.
 */
export {
  KeyManager,
  DEFAULT_DELETION_WAIT_MS,
  DEFAULT_MAX_PLAINTEXT_BYTES,
  type KeyManagerOptions,
  type CallContext,
  type EncryptOptions,
  type DecryptOptions,
  type DataKeyOptions,
  type SignOptions,
  type KeyInfo,
  type ScheduledRun,
  type BatchResult,
  MAX_BATCH_ITEMS,
  type KeySnapshot,
  type ExportKind,
} from './key-manager.js';
export {
  type InitOptions,
  type InitResult,
  type SealStatus,
  type SealType,
  type RootKeyProof,
} from './seal.js';
export { type CreateKeyOptions, type KeyConfigUpdate, type KeyPolicy } from './key-policy.js';
export {
  KEY_TYPES,
  DEFAULT_ROTATION_PERIOD_MS,
  MIN_ROTATION_PERIOD_MS,
  type KeyType,
  type KeyPurpose,
} from './key-types.js';
export { backupAllKeys, backupKey, restoreBackup, type BackupTarget, type RestoreSource } from './backup.js';
export {
  type AuditEntry,
  type AuditEvent,
  type AuditProblem,
  type AuditVerifyResult,
  type AuditCheckpoint,
} from './audit-log.js';
export {
  UsageMonitor,
  type UsageWarning,
  type UsageMonitorOptions,
  type UsageCounter,
  type UsageWindow,
} from './usage-monitor.js';
export { RESERVED_KEY_PREFIX, SYSTEM_CALL, checkKeyName, isReservedKeyName } from './names.js';
export { formatVersioned, parseVersioned } from './ciphertext.js';
export { RecordAuthenticator, recordTampered } from './record-seal.js';
