/**
 * The storage contract of the key manager. Two implementations honour it: SQLite (embedded, one node) and
 * PostgreSQL (several nodes sharing one store). The store holds only wrapped key material and metadata; it
 * never sees a plaintext key, so it needs no cryptography of its own.
 *
 * Every read and write happens inside {@link Store.transaction}. A transaction either commits all of its
 * writes or none of them, and `forUpdate` reads lock the row until commit, so two nodes rotating the same
 * key serialise instead of both writing "version 3".
 */

/** A named key's metadata row. `doc` is the key's JSON configuration, opaque to the store. */
export interface KeyRow {
  readonly name: string;
  readonly doc: string;
  /** Unix milliseconds of the last write. */
  readonly updatedAt: number;
}

/** One wrapped version of a named key. */
export interface KeyVersionRow {
  readonly name: string;
  readonly version: number;
  /** Keyring term whose key wrapped `wrapped`. */
  readonly term: number;
  readonly wrapped: Uint8Array;
  /** Unix milliseconds. */
  readonly createdAt: number;
  /**
   * Encryptions reserved under this version so far. Nodes reserve blocks before using them, so after a
   * crash the count can only be too high, never too low.
   */
  readonly reserved: number;
}

/** A per-context secret of a derived key; deleting it crypto-shreds the context's data. */
export interface KeyContextRow {
  readonly name: string;
  /** A keyed hash of the context, so contexts are not stored in clear. */
  readonly contextId: string;
  readonly term: number;
  readonly wrapped: Uint8Array;
  readonly createdAt: number;
}

/** One audit log entry: `entry` is canonical JSON; `hash` chains it to its predecessor; `mac` seals both. */
export interface AuditRow {
  readonly seq: number;
  readonly entry: string;
  readonly hash: string;
  readonly mac: string;
}

/** A wrapped blob that may need re-wrapping when the keyring rotates. */
export type WrappedRef =
  | { readonly kind: 'version'; readonly name: string; readonly version: number; readonly term: number }
  | { readonly kind: 'context'; readonly name: string; readonly contextId: string; readonly term: number };

export interface StoreTransaction {
  /**
   * With `lock: 'share'`, other transactions may also share-lock the row but none may update it until this
   * one ends; with `lock: 'update'`, the row is exclusively locked. (SQLite has one writer at a time, so
   * every write transaction already holds both.)
   */
  getMeta(key: string, options?: { lock?: 'share' | 'update' }): Promise<Uint8Array | undefined>;
  putMeta(key: string, value: Uint8Array): Promise<void>;
  deleteMeta(key: string): Promise<void>;
  /** Keys (not values) that start with `prefix`, ascending. */
  listMeta(prefix: string): Promise<string[]>;

  /** With `forUpdate`, the row stays locked until the transaction ends. */
  getKey(name: string, options?: { forUpdate?: boolean }): Promise<KeyRow | undefined>;
  /** Inserts a new key; returns false (and writes nothing) when the name is taken. */
  insertKey(row: KeyRow): Promise<boolean>;
  /** Replaces an existing key's document; returns false when there is no such key. */
  updateKey(row: KeyRow): Promise<boolean>;
  /** Deletes the key with its versions and contexts; returns false when there was no such key. */
  deleteKey(name: string): Promise<boolean>;
  /** Names in ascending order, strictly after `after`, at most `limit`. */
  listKeys(options?: { after?: string; limit?: number }): Promise<string[]>;

  /** Versions of one key in ascending order. */
  getVersions(name: string): Promise<KeyVersionRow[]>;
  getVersion(name: string, version: number): Promise<KeyVersionRow | undefined>;
  /** Inserts a version; returns false when that version already exists. */
  insertVersion(row: KeyVersionRow): Promise<boolean>;
  /** Replaces a version's wrapped material and term (keyring rotation); returns false when absent. */
  rewrapVersion(name: string, version: number, term: number, wrapped: Uint8Array): Promise<boolean>;
  /** Deletes versions below `minVersion`; returns how many went. */
  deleteVersionsBelow(name: string, minVersion: number): Promise<number>;
  /** Adds `count` to a version's reservation atomically and returns the new total. */
  reserveEncryptions(name: string, version: number, count: number): Promise<number>;

  getContext(name: string, contextId: string): Promise<KeyContextRow | undefined>;
  /** Inserts a context secret; returns false when one already exists (another node won the race). */
  insertContext(row: KeyContextRow): Promise<boolean>;
  rewrapContext(name: string, contextId: string, term: number, wrapped: Uint8Array): Promise<boolean>;
  deleteContext(name: string, contextId: string): Promise<boolean>;
  /** Every context secret of one key (for backup), ordered by contextId. */
  listContexts(name: string): Promise<KeyContextRow[]>;

  /** Wrapped blobs whose term differs from `term`, oldest first, at most `limit`. */
  listWrappedNotInTerm(term: number, limit: number): Promise<WrappedRef[]>;

  /**
   * The newest audit row. With `lock`, concurrent appenders (other nodes) wait until this transaction ends,
   * so the hash chain has exactly one successor per entry.
   */
  lastAudit(options?: { lock?: boolean }): Promise<AuditRow | undefined>;
  appendAudit(rows: readonly AuditRow[]): Promise<void>;
  /** Rows with seq > `afterSeq` in ascending order, at most `limit`. */
  readAudit(afterSeq: number, limit: number): Promise<AuditRow[]>;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Applies pending migrations; returns the schema version now in force. Safe to run concurrently. */
  migrate(): Promise<number>;
  /**
   * Runs `fn` in one transaction and commits when it resolves, rolls back when it throws. Transactions that
   * lose a deadlock or serialisation race are retried, so `fn` must be safe to run more than once.
   */
  transaction<T>(fn: (tx: StoreTransaction) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
