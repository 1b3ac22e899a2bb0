/**
 * The store layer: where the key manager keeps wrapped keys, metadata and the audit log. SQLite embedded by
 * default, PostgreSQL when several nodes share one store; both honour the contract in types.ts. This file
 * is the layer's public surface.
 */
import { invalidArgument } from '../crypto/index.js';
import { PostgresStore } from './postgres-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './types.js';

export type {
  Store,
  StoreTransaction,
  KeyRow,
  KeyVersionRow,
  KeyContextRow,
  AuditRow,
  WrappedRef,
  E2eeLeafRow,
  E2eeCheckpointRow,
  E2eeClaimedKeyPackage,
  E2eeMember,
  E2eeGroupRow,
  E2eeCommitRow,
  E2eeMessage,
  E2eeQueuedMessage,
  E2eeBlobRow,
  E2eeChallengeRow,
} from './types.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite-store.js';
export { PostgresStore, type PostgresStoreOptions } from './postgres-store.js';
export { MIGRATIONS, SCHEMA_VERSION, type Migration } from './migrations.js';

/**
 * Opens a store from a URL: `sqlite:<path>` (or `sqlite::memory:`), or `postgres://…` / `postgresql://…`.
 * Migrations are not applied here; the key manager applies them when it opens the store.
 */
export async function openStore(url: string): Promise<Store> {
  if (typeof url !== 'string') throw invalidArgument('store URL', 'must be a string');
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path.length === 0) throw invalidArgument('store URL', 'needs a path after "sqlite:"');
    return SqliteStore.open({ path });
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    return PostgresStore.connect({ connectionString: url });
  }
  throw invalidArgument('store URL', 'must start with sqlite: or postgres://');
}
