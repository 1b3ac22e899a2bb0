/**
 * The fields layer: column-level encryption for application databases, with blind indexes for equality
 * search. This file is the layer's public surface.
 */
export {
  FieldEncryption,
  type FieldEncryptionOptions,
  type EncryptedSchema,
  type TableSpec,
  type ColumnSpec,
  type BlindIndexSpec,
  type CompoundIndexSpec,
} from './field-encryption.js';
export { planBlindIndex, normalize, type BlindIndexPlan, type Normalizer } from './blind-index.js';
export { type FieldType, type FieldValue } from './value-codec.js';
export {
  reencryptColumn,
  type ReencryptOptions,
  type ReencryptProgress,
  type SqlExecutor,
} from './reencrypt.js';
export { sqliteExecutor, postgresExecutor } from './sql-executors.js';
export {
  migrateColumn,
  type MigrateColumnOptions,
  type MigrateProgress,
  type LegacySource,
} from './column-migration.js';
export { rekeyBlindIndex, type RekeyBlindIndexOptions, type RekeyProgress } from './reindex.js';
export {
  DataKeyCache,
  transitDataKeys,
  transitKeyProvider,
  type DataKeyProvider,
  type DataKeyCacheOptions,
  type DataKeyCacheStats,
  type TransitDataKeyClient,
} from './data-keys.js';
