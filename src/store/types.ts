/**
 * The store contract. The key manager keeps everything it persists behind this interface: an ordered
 * key-value space with compare-and-set versions and transactions (the shape of Vault's physical backends),
 * plus an append-only audit table whose appends are serialised so entries can be hash-chained.
 *
 * Values are opaque bytes: the key manager encrypts everything secret before it reaches a store, so a store
 * never sees plaintext key material. Two implementations satisfy the contract: SQLite (embedded, the
 * default) and PostgreSQL (several nodes sharing one store). test/store/contract.ts runs the same suite
 * against both.
 */

/** One stored value and its version, which increases by one on every write of that key. */
export interface StoreEntry {
  readonly key: string;
  readonly value: Uint8Array;
  readonly version: number;
}

export interface GetOptions {
  /**
   * Lock the row until the transaction ends, so a concurrent writer on another node waits (PostgreSQL
   * `SELECT … FOR UPDATE`; SQLite transactions are already serialised by the write lock).
   */
  forUpdate?: boolean;
}

export interface PutOptions {
  /**
   * Compare-and-set: the write succeeds only if the key's current version equals this (0 = must not exist);
   * otherwise the store throws ERR_CONFLICT and writes nothing.
   */
  expectedVersion?: number;
}

export interface ListOptions {
  /** Return keys strictly after this one (keyset pagination). */
  after?: string;
  /** At most this many keys (default 1000). */
  limit?: number;
}

/** Reads and writes inside one transaction. */
export interface StoreTx {
  get(key: string, options?: GetOptions): Promise<StoreEntry | undefined>;
  /** Writes and returns the new version. */
  put(key: string, value: Uint8Array, options?: PutOptions): Promise<number>;
  /** Deletes; returns whether the key existed. */
  delete(key: string): Promise<boolean>;
  /** Keys beginning with `prefix`, in byte order. */
  list(prefix: string, options?: ListOptions): Promise<string[]>;
  /** Appends an audit record; see {@link AuditAppend}. */
  appendAudit(build: AuditAppend): Promise<AuditRow>;
}

/** One row of the append-only audit table. `seq` starts at 1 and has no gaps. */
export interface AuditRow {
  readonly seq: number;
  /** Milliseconds since the epoch. */
  readonly time: number;
  /** The serialised entry (JSON text), its chain hash and its MAC, computed by the audit log. */
  readonly entry: string;
  readonly hash: string;
  readonly mac: string;
}

/**
 * Builds the next audit row from the previous one (undefined for the first). The store calls it while
 * holding the audit append lock, so the chain cannot fork even with several nodes.
 */
export type AuditAppend = (
  previous: AuditRow | undefined,
) => Omit<AuditRow, 'seq'> | Promise<Omit<AuditRow, 'seq'>>;

export interface AuditRange {
  /** First sequence number to return (default 1). */
  fromSeq?: number;
  /** At most this many rows (default 1000). */
  limit?: number;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Applies pending schema migrations; idempotent and safe to call from several nodes at once. */
  migrate(): Promise<void>;
  /** The schema version after migrations. */
  schemaVersion(): Promise<number>;
  get(key: string): Promise<StoreEntry | undefined>;
  list(prefix: string, options?: ListOptions): Promise<string[]>;
  /**
   * Runs `fn` in one transaction: all its writes commit together or none do. A thrown error rolls back and
   * propagates. Serialisation failures and deadlocks are retried a bounded number of times.
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  /** Audit rows in sequence order. */
  auditRange(range?: AuditRange): Promise<AuditRow[]>;
  /** The last audit row, if any. */
  auditLast(): Promise<AuditRow | undefined>;
  /** Deletes every key and audit row; for restore into an empty store and for tests. */
  wipe(): Promise<void>;
  close(): Promise<void>;
}
